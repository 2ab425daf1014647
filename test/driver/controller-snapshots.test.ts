import { stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotImagePath, volumeImagePath } from "../../src/backend/local/layout.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { Code, expectCode, MiB, mountCapability, startController, type ControllerHarness } from "./controller-harness.js";

// CreateSnapshot, DeleteSnapshot, restore, and the independence of snapshots and volumes.

let dir: string;
let h: ControllerHarness;
let n = 0;

beforeAll(async () => {
  dir = await makeTestDir("ctl-snapshots");
  h = await startController(dir);
});
afterAll(async () => {
  await h?.stop();
  await removeTestDir(dir);
});

async function newVolume(sizeMiB = 16): Promise<string> {
  const { volume } = await h.clients.controller.createVolume({
    name: `snapvol-${++n}`,
    volumeCapabilities: [mountCapability()],
    capacityRange: { requiredBytes: BigInt(sizeMiB * MiB) },
  });
  return volume?.volumeId ?? "";
}

const restoreFrom = (snapshotId: string, name: string, requiredBytes?: bigint) =>
  h.clients.controller.createVolume({
    name,
    volumeCapabilities: [mountCapability()],
    volumeContentSource: { type: { case: "snapshot", value: { snapshotId } } },
    ...(requiredBytes ? { capacityRange: { requiredBytes } } : {}),
  });

describe("CreateSnapshot", () => {
  it("cuts a ready snapshot of the volume's size, and returns the same one for a repeated request", async () => {
    const sourceVolumeId = await newVolume(16);
    const before = Date.now();
    const { snapshot } = await h.clients.controller.createSnapshot({
      name: "snap-a",
      sourceVolumeId,
      parameters: { "csi.storage.k8s.io/volumesnapshot/name": "a" },
    });
    expect(snapshot?.snapshotId).toMatch(/^snap-[0-9a-f-]{36}\.test-node$/);
    expect(snapshot).toMatchObject({ sourceVolumeId, sizeBytes: BigInt(16 * MiB), readyToUse: true, groupSnapshotId: "" });
    const seconds = Number(snapshot?.creationTime?.seconds ?? 0n);
    expect(seconds * 1000).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(seconds * 1000).toBeLessThanOrEqual(Date.now());
    expect((await stat(snapshotImagePath(h.dataDir, snapshot?.snapshotId ?? ""))).size).toBe(16 * MiB);

    const again = await h.clients.controller.createSnapshot({ name: "snap-a", sourceVolumeId });
    expect(again.snapshot).toEqual(snapshot);
    expect((await h.clients.controller.listSnapshots({ sourceVolumeId })).entries).toHaveLength(1);
  });

  it("answers ALREADY_EXISTS for the same name with another source, NOT_FOUND for a missing source", async () => {
    const a = await newVolume();
    const b = await newVolume();
    await h.clients.controller.createSnapshot({ name: "snap-b", sourceVolumeId: a });
    await expectCode(h.clients.controller.createSnapshot({ name: "snap-b", sourceVolumeId: b }), Code.AlreadyExists, /not of volume/);
    await expectCode(h.clients.controller.createSnapshot({ name: "snap-c", sourceVolumeId: "vol-missing" }), Code.NotFound, /vol-missing/);
    expect((await h.clients.controller.listSnapshots({ sourceVolumeId: b })).entries).toEqual([]);
  });

  it("answers INVALID_ARGUMENT for missing fields and parameters it does not know", async () => {
    const sourceVolumeId = await newVolume();
    const c = h.clients.controller;
    await expectCode(c.createSnapshot({ name: "x" }), Code.InvalidArgument, /source_volume_id is required/);
    await expectCode(c.createSnapshot({ sourceVolumeId }), Code.InvalidArgument, /name is required/);
    await expectCode(c.createSnapshot({ sourceVolumeId, name: "bad\u007fname" }), Code.InvalidArgument, /U\+007F/);
    await expectCode(
      c.createSnapshot({ sourceVolumeId, name: "params", parameters: { retention: "7d" } }),
      Code.InvalidArgument,
      /"retention"/,
    );
    expect((await c.listSnapshots({ sourceVolumeId })).entries).toEqual([]);
  });

  it("lets only one operation at a time work on a name (ABORTED for the other)", async () => {
    const sourceVolumeId = await newVolume(64);
    const results = await Promise.allSettled([
      h.clients.controller.createSnapshot({ name: "snap-race", sourceVolumeId }),
      h.clients.controller.createSnapshot({ name: "snap-race", sourceVolumeId }),
    ]);
    const codes = results.map((r) => (r.status === "fulfilled" ? "OK" : Code[(r.reason as { code: Code }).code]));
    expect(codes.sort()).toEqual(["Aborted", "OK"]);
    const again = await h.clients.controller.createSnapshot({ name: "snap-race", sourceVolumeId });
    const fulfilled = results.find((r) => r.status === "fulfilled");
    expect(again.snapshot?.snapshotId).toBe(fulfilled?.status === "fulfilled" ? fulfilled.value.snapshot?.snapshotId : undefined);
  });
});

describe("DeleteSnapshot", () => {
  it("removes the snapshot and is idempotent", async () => {
    const sourceVolumeId = await newVolume();
    const { snapshot } = await h.clients.controller.createSnapshot({ name: "snap-del", sourceVolumeId });
    const snapshotId = snapshot?.snapshotId ?? "";
    await h.clients.controller.deleteSnapshot({ snapshotId });
    await expect(stat(snapshotImagePath(h.dataDir, snapshotId))).rejects.toThrow(/ENOENT/);
    expect((await h.clients.controller.listSnapshots({ snapshotId })).entries).toEqual([]);
    await h.clients.controller.deleteSnapshot({ snapshotId });
    await h.clients.controller.deleteSnapshot({ snapshotId: "snap-never-issued" });
    await expectCode(h.clients.controller.deleteSnapshot({}), Code.InvalidArgument, /snapshot_id is required/);
    await expectCode(restoreFrom(snapshotId, "from-deleted"), Code.NotFound, /snapshot/);
  });
});

describe("snapshots and volumes are independent", () => {
  it("a snapshot outlives its volume and can still be restored; deleting it leaves its restores alone", async () => {
    const sourceVolumeId = await newVolume(32);
    const { snapshot } = await h.clients.controller.createSnapshot({ name: "snap-indep", sourceVolumeId });
    const snapshotId = snapshot?.snapshotId ?? "";
    await h.clients.controller.deleteVolume({ volumeId: sourceVolumeId });
    const listed = await h.clients.controller.listSnapshots({ snapshotId });
    expect(listed.entries.map((e) => e.snapshot?.sourceVolumeId)).toEqual([sourceVolumeId]);

    const restored = await restoreFrom(snapshotId, "restored-indep");
    expect(restored.volume?.capacityBytes).toBe(BigInt(32 * MiB));
    expect(restored.volume?.contentSource?.type).toEqual(
      expect.objectContaining({ case: "snapshot", value: expect.objectContaining({ snapshotId }) }),
    );
    const restoredId = restored.volume?.volumeId ?? "";
    await h.clients.controller.deleteSnapshot({ snapshotId });
    expect((await stat(volumeImagePath(h.dataDir, restoredId))).size).toBe(32 * MiB);
    const volumes = (await h.clients.controller.listVolumes({})).entries.map((e) => e.volume?.volumeId);
    expect(volumes).toContain(restoredId);
  });

  it("restores into a bigger volume, refuses a smaller one (OUT_OF_RANGE)", async () => {
    const sourceVolumeId = await newVolume(32);
    const { snapshot } = await h.clients.controller.createSnapshot({ name: "snap-sizes", sourceVolumeId });
    const snapshotId = snapshot?.snapshotId ?? "";
    const bigger = await restoreFrom(snapshotId, "restored-bigger", BigInt(48 * MiB));
    expect(bigger.volume?.capacityBytes).toBe(BigInt(48 * MiB));
    await expectCode(
      h.clients.controller.createVolume({
        name: "restored-smaller",
        volumeCapabilities: [mountCapability()],
        volumeContentSource: { type: { case: "snapshot", value: { snapshotId } } },
        capacityRange: { requiredBytes: BigInt(16 * MiB), limitBytes: BigInt(16 * MiB) },
      }),
      Code.OutOfRange,
      /smaller than its source/,
    );
  });
});
