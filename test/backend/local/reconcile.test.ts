import { readdir, rm, stat, truncate, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerBackend } from "../../../src/backend/backend.js";
import { openLocalController } from "../../../src/backend/local/controller.js";
import { snapshotImagePath, snapshotsDir, stateFilePath, volumeImagePath, volumesDir } from "../../../src/backend/local/layout.js";
import { silentLogger } from "../../../src/log/logger.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { controllerConfig, MiB } from "../../driver/controller-harness.js";
import { readState } from "./local-fixtures.js";

// Start-up reconciliation, with states a crash can leave, written by hand.

let dir: string;
beforeAll(async () => {
  dir = await makeTestDir("local-reconcile");
});
afterAll(() => removeTestDir(dir));

const signal = new AbortController().signal;
const spec = (name: string, sizeBytes = 4 * MiB) => ({
  name,
  sizeBytes,
  accessTypes: ["mount" as const],
  fsType: "",
  parameters: {},
  mutableParameters: {},
  requisite: [],
  preferred: [],
});

async function open(dataDirParent: string): Promise<ControllerBackend> {
  return openLocalController(controllerConfig(dataDirParent), silentLogger);
}

describe("reconcile on start-up", () => {
  it("rolls back creations, finishes deletions, adopts grown sizes, removes partials, and leaves unknown files alone", async () => {
    const base = join(dir, "mixed");
    let backend = await open(base);
    const dataDir = join(base, "data");
    const keep = await backend.createVolume(spec("keep"), signal);
    const halfMade = await backend.createVolume(spec("half-made"), signal);
    const halfDeleted = await backend.createVolume(spec("half-deleted"), signal);
    const grown = await backend.createVolume(spec("grown"), signal);
    const snapKeep = await backend.createSnapshot({ name: "snap-keep", sourceVolumeId: keep.id, parameters: {} }, signal);
    const snapHalf = await backend.createSnapshot({ name: "snap-half", sourceVolumeId: keep.id, parameters: {} }, signal);
    await backend.close();

    // What a crash leaves: records in intermediate phases, a partly written copy, an image grown before its size was recorded.
    const state = await readState(dataDir);
    Object.assign(state.volumes, {
      [halfMade.id]: { ...state.volumes[halfMade.id], phase: "creating", listPosition: 0 },
      [halfDeleted.id]: { ...state.volumes[halfDeleted.id], phase: "deleting" },
    });
    Object.assign(state.snapshots, { [snapHalf.id]: { ...state.snapshots[snapHalf.id], phase: "creating", listPosition: 0 } });
    await writeFile(stateFilePath(dataDir), JSON.stringify(state));
    await writeFile(`${volumeImagePath(dataDir, halfMade.id)}.partial`, "partial data");
    await truncate(volumeImagePath(dataDir, grown.id), 8 * MiB);
    const strayPartial = `${volumeImagePath(dataDir, "vol-from-nowhere")}.partial`;
    await writeFile(strayPartial, "x");
    const unknown = join(volumesDir(dataDir), "vol-not-mine.img");
    await writeFile(unknown, "someone else's data");

    backend = await open(base);
    try {
      const volumes = (await backend.listVolumes(0, "", signal)).items;
      expect(volumes.map((v) => v.name).sort()).toEqual(["grown", "keep"]);
      expect(volumes.find((v) => v.name === "grown")?.capacityBytes).toBe(8 * MiB);
      expect((await backend.listSnapshots({}, 0, "", signal)).items.map((s) => s.name)).toEqual(["snap-keep"]);
      expect((await readdir(volumesDir(dataDir))).sort()).toEqual([`${grown.id}.img`, `${keep.id}.img`, "vol-not-mine.img"].sort());
      expect(await readdir(snapshotsDir(dataDir))).toEqual([`${snapKeep.id}.img`]);
      expect((await stat(unknown)).size).toBe(19);
      const after = await readState(dataDir);
      expect(Object.keys(after.volumes).sort()).toEqual([grown.id, keep.id].sort());
      expect(after.volumes[grown.id]?.sizeBytes).toBe(8 * MiB);
      // The name of a rolled-back volume is free for the retry.
      const retried = await backend.createVolume(spec("half-made"), signal);
      expect(retried.id).not.toBe(halfMade.id);
    } finally {
      await backend.close();
    }
  });

  it("grows an image that is smaller than its recorded size, and reports a missing image as abnormal", async () => {
    const base = join(dir, "damaged");
    let backend = await open(base);
    const dataDir = join(base, "data");
    const shrunk = await backend.createVolume(spec("shrunk", 8 * MiB), signal);
    const lost = await backend.createVolume(spec("lost"), signal);
    const snapshot = await backend.createSnapshot({ name: "snap", sourceVolumeId: lost.id, parameters: {} }, signal);
    await backend.close();
    await truncate(volumeImagePath(dataDir, shrunk.id), 2 * MiB);
    await rm(volumeImagePath(dataDir, lost.id));

    backend = await open(base);
    try {
      expect((await stat(volumeImagePath(dataDir, shrunk.id))).size).toBe(8 * MiB);
      const missing = await backend.getVolume(lost.id, signal);
      expect(missing?.condition).toMatchObject({ abnormal: true, message: expect.stringMatching(/missing/) });
      expect((await backend.getVolume(shrunk.id, signal))?.condition?.abnormal).toBe(false);
      // The snapshot of the lost volume is independent of it.
      expect((await stat(snapshotImagePath(dataDir, snapshot.id))).size).toBe(4 * MiB);
    } finally {
      await backend.close();
    }
  });

  it("refuses to start when images exist but the metadata is gone, rather than lose track of them", async () => {
    const base = join(dir, "lost-metadata");
    const backend = await open(base);
    await backend.createVolume(spec("precious"), signal);
    await backend.close();
    await rm(stateFilePath(join(base, "data")));
    await expect(open(base)).rejects.toThrow(/holds 1 image file\(s\) but .*state\.json is missing: refusing to start/);
    // And it did not take the data dir's lock with it.
    await writeFile(stateFilePath(join(base, "data")), JSON.stringify({ format: 1, lastListPosition: 0, volumes: {}, snapshots: {} }));
    const reopened = await open(base);
    await reopened.close();
  });
});

describe("start-up checks", () => {
  it("refuses a node id that cannot be a topology value, before touching the data dir", async () => {
    const base = join(dir, "bad-node-id");
    const config = controllerConfig(base, ["--node-id", `${"n".repeat(64)}`]);
    await expect(openLocalController(config, silentLogger)).rejects.toThrow(
      /cannot be the value of the topology key local.csi.do-csi-plugin.io\/node/,
    );
    await expect(stat(join(base, "data"))).rejects.toThrow(/ENOENT/);
  });
});
