import { rm } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ControllerServiceCapability_RPC_Type as Rpc } from "../../src/gen/csi/v1/csi_pb.js";
import { volumeImagePath } from "../../src/backend/local/layout.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  blockCapability,
  Code,
  DRIVER,
  expectCode,
  GiB,
  MiB,
  Mode,
  mountCapability,
  NODE_ID,
  startController,
  type ControllerHarness,
} from "./controller-harness.js";

// ControllerGetCapabilities, the alpha switches, and GetCapacity, with the local backend.

const rpcTypes = async (h: ControllerHarness) =>
  (await h.clients.controller.controllerGetCapabilities({})).capabilities.map((c) =>
    c.type.case === "rpc" ? Rpc[c.type.value.type] : "?",
  );

describe("without alpha features", () => {
  let dir: string;
  let h: ControllerHarness;
  beforeAll(async () => {
    dir = await makeTestDir("ctl-caps");
    h = await startController(join(dir));
  });
  afterAll(async () => {
    await h?.stop();
    await removeTestDir(dir);
  });

  it("lists exactly the GA capabilities that work", async () => {
    expect((await rpcTypes(h)).sort()).toEqual(
      [
        "CREATE_DELETE_VOLUME",
        "PUBLISH_UNPUBLISH_VOLUME",
        "LIST_VOLUMES",
        "LIST_VOLUMES_PUBLISHED_NODES",
        "GET_CAPACITY",
        "CREATE_DELETE_SNAPSHOT",
        "LIST_SNAPSHOTS",
        "CLONE_VOLUME",
        "PUBLISH_READONLY",
        "EXPAND_VOLUME",
        "MODIFY_VOLUME",
      ].sort(),
    );
  });

  it("answers UNIMPLEMENTED for the alpha RPCs and leaves volume_condition and minimum_volume_size out", async () => {
    const { volume } = await h.clients.controller.createVolume({ name: "alpha-off", volumeCapabilities: [mountCapability()] });
    const volumeId = volume?.volumeId ?? "";
    await expectCode(h.clients.controller.controllerGetVolume({ volumeId }), Code.Unimplemented, /--alpha-features=get-volume/);
    const { snapshot } = await h.clients.controller.createSnapshot({ name: "alpha-off", sourceVolumeId: volumeId });
    await expectCode(
      h.clients.controller.getSnapshot({ snapshotId: snapshot?.snapshotId ?? "" }),
      Code.Unimplemented,
      /--alpha-features=get-snapshot/,
    );
    const entry = (await h.clients.controller.listVolumes({})).entries[0];
    expect(entry?.status?.volumeCondition).toBeUndefined();
    expect(entry?.status?.publishedNodeIds).toEqual([]);
    const capacity = await h.clients.controller.getCapacity({});
    expect(capacity.minimumVolumeSize).toBeUndefined();
    await expectCode(
      h.clients.controller.createVolume({ name: "snsw", volumeCapabilities: [mountCapability("", Mode.SINGLE_NODE_SINGLE_WRITER)] }),
      Code.InvalidArgument,
      /SINGLE_NODE_SINGLE_WRITER is not supported/,
    );
  });

  it("reports the pool's free capacity, bounded maximum size, and 0 elsewhere", async () => {
    const c = h.clients.controller;
    const { availableCapacity, maximumVolumeSize } = await c.getCapacity({ volumeCapabilities: [mountCapability("ext4")] });
    expect(availableCapacity).toBeGreaterThan(BigInt(GiB));
    expect(maximumVolumeSize).toBeDefined();
    expect(maximumVolumeSize ?? 0n).toBeLessThanOrEqual(availableCapacity);
    expect((maximumVolumeSize ?? 0n) % BigInt(MiB)).toBe(0n);
    expect(availableCapacity - (maximumVolumeSize ?? 0n)).toBeLessThan(BigInt(MiB));

    const here = await c.getCapacity({ accessibleTopology: { segments: { [`${DRIVER}/node`]: NODE_ID } } });
    expect(here.availableCapacity).toBeGreaterThan(0n);
    const elsewhere = await c.getCapacity({ accessibleTopology: { segments: { [`${DRIVER}/node`]: "other" } } });
    expect(elsewhere).toMatchObject({ availableCapacity: 0n, maximumVolumeSize: 0n });
    const multi = await c.getCapacity({ volumeCapabilities: [blockCapability(Mode.MULTI_NODE_MULTI_WRITER)] });
    expect(multi.availableCapacity).toBe(0n);
    await expectCode(c.getCapacity({ parameters: { tier: "gold" } }), Code.InvalidArgument, /"tier"/);
    await expectCode(
      c.getCapacity({ volumeCapabilities: [{ accessMode: { mode: Mode.SINGLE_NODE_WRITER } }] }),
      Code.InvalidArgument,
      /access_type is required/,
    );
  });

  it("counts a provisioned volume's full size against the capacity, even though its image is sparse", async () => {
    const c = h.clients.controller;
    const before = (await c.getCapacity({})).availableCapacity;
    const { volume } = await c.createVolume({
      name: "ten-gib",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(10 * GiB) },
    });
    const after = (await c.getCapacity({})).availableCapacity;
    // Other test files write to the same filesystem meanwhile: allow 512 MiB of noise.
    expect(Number(before - after)).toBeGreaterThan(10 * GiB - 512 * MiB);
    expect(Number(before - after)).toBeLessThan(10 * GiB + 512 * MiB);
    await c.deleteVolume({ volumeId: volume?.volumeId ?? "" });
    const freed = (await c.getCapacity({})).availableCapacity;
    expect(Number(freed - after)).toBeGreaterThan(10 * GiB - 512 * MiB);
  });
});

describe("with every alpha feature", () => {
  let dir: string;
  let h: ControllerHarness;
  beforeAll(async () => {
    dir = await makeTestDir("ctl-alpha");
    h = await startController(dir, ["--alpha-features", "all"]);
  });
  afterAll(async () => {
    await h?.stop();
    await removeTestDir(dir);
  });

  it("adds VOLUME_CONDITION, GET_VOLUME, GET_SNAPSHOT and SINGLE_NODE_MULTI_WRITER", async () => {
    const types = await rpcTypes(h);
    expect(types).toEqual(expect.arrayContaining(["VOLUME_CONDITION", "GET_VOLUME", "GET_SNAPSHOT", "SINGLE_NODE_MULTI_WRITER"]));
    expect(types).toContain("MODIFY_VOLUME");
    expect(types).toHaveLength(15);
  });

  it("serves ControllerGetVolume with published nodes and the volume's condition", async () => {
    const c = h.clients.controller;
    const { volume } = await c.createVolume({ name: "get-me", volumeCapabilities: [mountCapability("", Mode.SINGLE_NODE_MULTI_WRITER)] });
    const volumeId = volume?.volumeId ?? "";
    await c.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability("", Mode.SINGLE_NODE_SINGLE_WRITER) });
    const got = await c.controllerGetVolume({ volumeId });
    expect(got.volume).toEqual(volume);
    expect(got.status?.publishedNodeIds).toEqual([NODE_ID]);
    expect(got.status?.volumeCondition).toMatchObject({ abnormal: false });
    await expectCode(c.controllerGetVolume({ volumeId: "vol-missing" }), Code.NotFound);
    await expectCode(c.controllerGetVolume({}), Code.InvalidArgument, /volume_id is required/);

    // A volume whose image vanished is reported abnormal, in ListVolumes too.
    await rm(volumeImagePath(h.dataDir, volumeId));
    const broken = await c.controllerGetVolume({ volumeId });
    expect(broken.status?.volumeCondition).toMatchObject({ abnormal: true, message: expect.stringMatching(/missing/) });
    const listed = (await c.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
    expect(listed?.status?.volumeCondition?.abnormal).toBe(true);
  });

  it("serves GetSnapshot and sends minimum_volume_size", async () => {
    const c = h.clients.controller;
    const { volume } = await c.createVolume({
      name: "snap-me",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(4 * MiB) },
    });
    const { snapshot } = await c.createSnapshot({ name: "get-snap", sourceVolumeId: volume?.volumeId ?? "" });
    const got = await c.getSnapshot({ snapshotId: snapshot?.snapshotId ?? "" });
    expect(got.snapshot).toEqual(snapshot);
    await expectCode(c.getSnapshot({ snapshotId: "snap-missing" }), Code.NotFound);
    await expectCode(c.getSnapshot({}), Code.InvalidArgument, /snapshot_id is required/);
    expect((await c.getCapacity({})).minimumVolumeSize).toBe(BigInt(MiB));
  });
});
