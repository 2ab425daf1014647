import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectCsi, type CsiClients } from "../../../src/csi/client.js";
import type { CrashPoint } from "../../../src/backend/local/crash-points.js";
import { volumeImagePath, snapshotImagePath } from "../../../src/backend/local/layout.js";
import { startDriver, type DriverProcess } from "../../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { MiB, mountCapability } from "../../driver/controller-harness.js";
import { copyBuiltCli, expectConsistent, fileDigest, writePattern } from "./local-fixtures.js";

// kill -9 between the steps of create, snapshot, expand and delete (the driver kills itself at a named
// crash point, a hook only this test enables), restart, check that what the CO sees and the files agree,
// then retry and check that the retry converges. Then kill at random moments, many times.

let dir: string;
let dataDir: string;
let driver: DriverProcess | undefined;
let clients: CsiClients | undefined;
let n = 0;
let command: string[] = [];

async function start(crashAt?: CrashPoint): Promise<CsiClients> {
  await stop();
  driver = await startDriver(
    join(dir, "csi.sock"),
    ["--backend", "local", "--mode", "controller", "--data-dir", dataDir, "--node-id", "crash-node", "--log-level", "warn"],
    {
      command,
      env: crashAt ? { DO_CSI_TEST_CRASH_AT: crashAt } : {},
    },
  );
  clients = connectCsi(driver.endpoint);
  return clients;
}

async function stop(): Promise<void> {
  clients?.close();
  clients = undefined;
  if (driver) await driver.stop("SIGKILL");
  driver = undefined;
}

/** Run `action` on a driver armed to die at `point`; it must die there (SIGKILL) instead of answering. */
async function crashAt(point: CrashPoint, action: (c: CsiClients) => Promise<unknown>): Promise<void> {
  const c = await start(point);
  const running = driver;
  const outcome = await action(c).then(
    () => "answered",
    (err: unknown) => (err instanceof ConnectError ? Code[err.code] : String(err)),
  );
  await running?.exited;
  expect(running?.child.signalCode, `the driver should have died at ${point}`).toBe("SIGKILL");
  expect(outcome).not.toBe("answered");
}

const createVolume = (c: CsiClients, name: string, extra: Record<string, unknown> = {}) =>
  c.controller.createVolume({
    name,
    volumeCapabilities: [mountCapability()],
    capacityRange: { requiredBytes: BigInt(64 * MiB) },
    ...extra,
  });

/** A volume with data at a few offsets, made on a healthy driver. */
async function volumeWithData(): Promise<{ volumeId: string; digest: string }> {
  const c = await start();
  const { volume } = await createVolume(c, `data-${++n}`);
  const volumeId = volume?.volumeId ?? "";
  await writePattern(volumeImagePath(dataDir, volumeId), [0, 10 * MiB + 4096, 63 * MiB]);
  return { volumeId, digest: await fileDigest(volumeImagePath(dataDir, volumeId)) };
}

beforeAll(async () => {
  dir = await makeTestDir("local-crash");
  command = await copyBuiltCli(dir);
  dataDir = join(dir, "data");
});
afterEach(stop);
afterAll(async () => {
  await stop();
  await removeTestDir(dir);
});

describe("kill -9 during CreateVolume", () => {
  const points: CrashPoint[] = ["volume-create:recorded", "volume-create:written", "volume-create:renamed", "volume-create:ready"];
  for (const point of points) {
    it(`at ${point}: the restart reports no half-made volume and the retry converges`, async () => {
      const { volumeId: sourceId, digest } = await volumeWithData();
      const before = await expectConsistent(await start(), dataDir);
      const name = `clone-${point}`;
      const clone = (c: CsiClients) =>
        createVolume(c, name, { volumeContentSource: { type: { case: "volume", value: { volumeId: sourceId } } } });
      await crashAt(point, clone);

      const c = await start();
      const after = await expectConsistent(c, dataDir);
      const appeared = after.volumes.filter((id) => !before.volumes.includes(id));
      // Only a volume whose creation was recorded as complete survives the crash.
      expect(appeared).toHaveLength(point === "volume-create:ready" ? 1 : 0);

      const retried = await clone(c);
      const again = await clone(c);
      expect(again.volume?.volumeId).toBe(retried.volume?.volumeId);
      // The retry returns the volume that survived the crash, if one did; otherwise it makes it now.
      const retriedId = retried.volume?.volumeId ?? "";
      expect(appeared).toEqual(point === "volume-create:ready" ? [retriedId] : []);
      expect(before.volumes).not.toContain(retriedId);
      expect(await fileDigest(volumeImagePath(dataDir, retried.volume?.volumeId ?? ""))).toBe(digest);
      const final = await expectConsistent(c, dataDir);
      expect(final.volumes).toHaveLength(before.volumes.length + 1);
    });
  }
});

describe("kill -9 during CreateSnapshot", () => {
  const points: CrashPoint[] = [
    "snapshot-create:recorded",
    "snapshot-create:frozen",
    "snapshot-create:written",
    "snapshot-create:renamed",
    "snapshot-create:ready",
  ];
  for (const point of points) {
    it(`at ${point}: the restart reports no half-cut snapshot and the retry converges`, async () => {
      const { volumeId, digest } = await volumeWithData();
      const before = await expectConsistent(await start(), dataDir);
      const name = `snap-${point}`;
      await crashAt(point, (c) => c.controller.createSnapshot({ name, sourceVolumeId: volumeId }));

      const c = await start();
      const after = await expectConsistent(c, dataDir);
      expect(after.snapshots.filter((id) => !before.snapshots.includes(id))).toHaveLength(point === "snapshot-create:ready" ? 1 : 0);
      const { snapshot } = await c.controller.createSnapshot({ name, sourceVolumeId: volumeId });
      expect(snapshot?.readyToUse).toBe(true);
      expect(await fileDigest(snapshotImagePath(dataDir, snapshot?.snapshotId ?? ""))).toBe(digest);
      expect((await expectConsistent(c, dataDir)).snapshots).toHaveLength(before.snapshots.length + 1);
    });
  }
});

describe("kill -9 during deletions and expansion", () => {
  for (const point of ["volume-delete:marked", "volume-delete:unlinked"] as const) {
    it(`DeleteVolume at ${point}: the restart finishes the deletion`, async () => {
      const { volumeId } = await volumeWithData();
      await crashAt(point, (c) => c.controller.deleteVolume({ volumeId }));
      const c = await start();
      const after = await expectConsistent(c, dataDir);
      expect(after.volumes).not.toContain(volumeId);
      await c.controller.deleteVolume({ volumeId });
    });
  }

  for (const point of ["snapshot-delete:marked", "snapshot-delete:unlinked"] as const) {
    it(`DeleteSnapshot at ${point}: the restart finishes the deletion, and the volume is untouched`, async () => {
      const { volumeId, digest } = await volumeWithData();
      const { snapshot } = await (await start()).controller.createSnapshot({ name: `del-${point}`, sourceVolumeId: volumeId });
      const snapshotId = snapshot?.snapshotId ?? "";
      await crashAt(point, (c) => c.controller.deleteSnapshot({ snapshotId }));
      const c = await start();
      const after = await expectConsistent(c, dataDir);
      expect(after.snapshots).not.toContain(snapshotId);
      expect(after.volumes).toContain(volumeId);
      expect(await fileDigest(volumeImagePath(dataDir, volumeId))).toBe(digest);
      await c.controller.deleteSnapshot({ snapshotId });
    });
  }

  it("ControllerExpandVolume at volume-expand:grown: the restart adopts the grown size, the retry is OK", async () => {
    const { volumeId } = await volumeWithData();
    const requiredBytes = BigInt(96 * MiB);
    await crashAt("volume-expand:grown", (c) => c.controller.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes } }));
    const c = await start();
    await expectConsistent(c, dataDir);
    const listed = (await c.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
    expect(listed?.volume?.capacityBytes).toBe(requiredBytes);
    const retried = await c.controller.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes } });
    expect(retried.capacityBytes).toBe(requiredBytes);
  });
});

describe("kill -9 at random moments", () => {
  it("always restarts to a consistent state from which every request completes", { timeout: 240_000 }, async () => {
    const { volumeId: sourceId } = await volumeWithData();
    const first = await start();
    const { snapshot } = await first.controller.createSnapshot({ name: "random-base", sourceVolumeId: sourceId });
    const baseSnapshot = snapshot?.snapshotId ?? "";
    // Every round deletes a volume and a snapshot made before it: the first round's.
    await createVolume(first, "random-doomed");
    await first.controller.createSnapshot({ name: "random-doomed", sourceVolumeId: sourceId });
    const rounds = 12;
    let interrupted = 0;
    for (let round = 0; round < rounds; round++) {
      const c = await start();
      const before = await expectConsistent(c, dataDir);
      const doomedVolume = before.volumes.find((id) => id !== sourceId);
      const doomedSnapshot = before.snapshots.find((id) => id !== baseSnapshot);
      if (doomedVolume === undefined || doomedSnapshot === undefined) throw new Error(`round ${round} has no volume or snapshot to delete`);
      // A burst of mutations; the driver dies somewhere inside it.
      const work = (cl: CsiClients) => [
        createVolume(cl, `r${round}-empty`),
        createVolume(cl, `r${round}-restore`, { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: baseSnapshot } } } }),
        cl.controller.createSnapshot({ name: `r${round}-snap`, sourceVolumeId: sourceId }),
        cl.controller.deleteVolume({ volumeId: doomedVolume }),
        cl.controller.deleteSnapshot({ snapshotId: doomedSnapshot }),
      ];
      const pending = Promise.allSettled(work(c));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 60)));
      await driver?.stop("SIGKILL");
      const settled = await pending;
      if (settled.some((s) => s.status === "rejected")) interrupted += 1;

      const restarted = await start();
      await expectConsistent(restarted, dataDir);
      // Retrying everything converges: all of it succeeds, and the data dir is consistent again.
      const retried = await Promise.allSettled(work(restarted));
      expect(retried.filter((s) => s.status === "rejected").map((s) => (s as PromiseRejectedResult).reason)).toEqual([]);
      const after = await expectConsistent(restarted, dataDir);
      expect(after.volumes).not.toContain(doomedVolume);
      expect(after.snapshots).not.toContain(doomedSnapshot);
    }
    // The kills really landed inside operations (not only between them).
    expect(interrupted).toBeGreaterThan(rounds / 3);
  });
});
