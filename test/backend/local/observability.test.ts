import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { ControllerBackend, NewVolume } from "../../../src/backend/backend.js";
import { volumeImagePath } from "../../../src/backend/local/layout.js";
import { openLocalController } from "../../../src/backend/local/controller.js";
import { copySparse } from "../../../src/backend/local/sparse-copy.js";
import { controllerConfig, MiB } from "../../driver/controller-harness.js";
import { captureLog } from "../../support/log-capture.js";
import { recordingMetrics } from "../../support/recording-metrics.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { allocatedBytes, writePattern } from "./local-fixtures.js";

function newVolume(name: string, sizeBytes: number, source?: NewVolume["source"]): NewVolume {
  return {
    name,
    sizeBytes,
    accessTypes: ["mount"],
    fsType: "",
    parameters: {},
    mutableParameters: {},
    ...(source ? { source } : {}),
    requisite: [],
    preferred: [],
  };
}

const signal = () => AbortSignal.timeout(60_000);

describe("local backend metrics and progress", () => {
  let dir: string;
  let backend: ControllerBackend | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("local-observability");
  });
  afterEach(async () => {
    await backend?.close();
    backend = undefined;
    await removeTestDir(dir);
  });

  it("gives the metrics a pool source that reads capacity, provisioned and used bytes and the counts when asked", async () => {
    const metrics = recordingMetrics();
    backend = await openLocalController(controllerConfig(dir), captureLog("silent").logger, metrics);
    expect(metrics.pools).toHaveLength(1);
    const read = metrics.pools[0]!;
    const empty = await read();
    expect(empty).toMatchObject({ provisionedBytes: 0, usedBytes: 0, volumes: 0, snapshots: 0 });
    expect(empty.capacityBytes).toBeGreaterThan(0);
    expect(empty.availableBytes).toBe(empty.capacityBytes); // overcommit ratio 1, nothing promised

    const volume = await backend.createVolume(newVolume("pool-a", 64 * MiB), signal());
    await writePattern(volumeImagePath(controllerConfig(dir).local.dataDir, volume.id), [0, 8 * MiB], MiB);
    await backend.createSnapshot({ name: "pool-snap", sourceVolumeId: volume.id, parameters: {} }, signal());
    const full = await read();
    const used = await allocatedBytes(volumeImagePath(controllerConfig(dir).local.dataDir, volume.id));
    expect(full.volumes).toBe(1);
    expect(full.snapshots).toBe(1);
    expect(full.usedBytes).toBeGreaterThanOrEqual(2 * used); // the volume and its snapshot's copy
    expect(full.provisionedBytes).toBe(64 * MiB + (full.usedBytes - used));
    expect(full.availableBytes).toBe(full.capacityBytes - full.provisionedBytes);
  });

  it("logs progress of image copies for snapshots and restores, with the object's id", async () => {
    const log = captureLog("info");
    backend = await openLocalController(controllerConfig(dir), log.logger, undefined, { progressIntervalMs: 1 });
    const volume = await backend.createVolume(newVolume("copy-src", 64 * MiB), signal());
    // 16 MiB of data: the copy outlasts a 1 ms interval many times over.
    await writePattern(
      volumeImagePath(controllerConfig(dir).local.dataDir, volume.id),
      Array.from({ length: 16 }, (_, i) => i * 4 * MiB),
      MiB,
    );
    const snapshot = await backend.createSnapshot({ name: "copy-snap", sourceVolumeId: volume.id, parameters: {} }, signal());
    const restored = await backend.createVolume(newVolume("copy-restore", 64 * MiB, { kind: "snapshot", id: snapshot.id }), signal());
    const waits = log.records().filter((r) => r.msg === "still waiting");
    expect(waits.some((r) => r.snapshotId === snapshot.id && String(r.waitingFor).startsWith("image copy of "))).toBe(true);
    expect(waits.some((r) => r.volumeId === restored.id && String(r.waitingFor).startsWith("image copy of "))).toBe(true);
  });

  it("copySparse logs nothing without progress options", async () => {
    const log = captureLog("info");
    backend = await openLocalController(controllerConfig(dir), log.logger);
    const volume = await backend.createVolume(newVolume("quiet-src", 32 * MiB), signal());
    const source = volumeImagePath(controllerConfig(dir).local.dataDir, volume.id);
    await copySparse(source, `${dir}/copy.img`);
    await copySparse(source, `${dir}/copy-watched.img`, { log: log.logger, intervalMs: 60_000 });
    expect(log.records().filter((r) => r.msg === "still waiting")).toEqual([]);
  });
});
