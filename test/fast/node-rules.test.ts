import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { NodeServiceCapability_RPC_Type as Rpc } from "../../src/gen/csi/v1/csi_pb.js";
import { useFakeDrivers, type FakeDriver } from "../fakes/fake-driver.js";
import { blockCapability, Code, expectCode, Mode, mountCapability } from "../driver/controller-harness.js";

// The node service's rules that hold before and around the backend, over the in-memory node backend. Formatting,
// mounting and binding need root and real devices: test/driver/node-*.test.ts cover them.

const fakeDriver = useFakeDrivers("fast-node");

/** A staging directory and a regular file posing as the volume's device, under the driver's own directory. */
async function stagingSetup(d: FakeDriver): Promise<{ staging: string; notADevice: string }> {
  const root = join(d.config.kubeletDir, "..", "host");
  await mkdir(join(root, "staging"), { recursive: true });
  const notADevice = join(root, "not-a-device");
  await writeFile(notADevice, "");
  return { staging: join(root, "staging"), notADevice };
}

describe("NodeGetInfo and NodeGetCapabilities", () => {
  it("report the backend's node id, volume limit and topology", async () => {
    const d = await fakeDriver({ node: { info: { nodeId: "droplet-7", maxVolumesPerNode: 7, accessibleTopology: { region: "nyc1" } } } });
    const info = await d.clients.node.nodeGetInfo({});
    expect(info).toMatchObject({ nodeId: "droplet-7", maxVolumesPerNode: 7n });
    expect(info.accessibleTopology?.segments).toEqual({ region: "nyc1" });
    const bare = await fakeDriver();
    expect((await bare.clients.node.nodeGetInfo({})).accessibleTopology).toBeUndefined();
  });

  it("offer staging, stats and expansion, and the alpha capabilities only when switched on", async () => {
    const names = async (d: FakeDriver) =>
      (await d.clients.node.nodeGetCapabilities({})).capabilities.map((c) => (c.type.case === "rpc" ? Rpc[c.type.value.type] : "?"));
    expect(await names(await fakeDriver())).toEqual(["STAGE_UNSTAGE_VOLUME", "GET_VOLUME_STATS", "EXPAND_VOLUME"]);
    expect(await names(await fakeDriver({ flags: ["--alpha-features", "all"] }))).toEqual([
      "STAGE_UNSTAGE_VOLUME",
      "GET_VOLUME_STATS",
      "EXPAND_VOLUME",
      "VOLUME_CONDITION",
      "SINGLE_NODE_MULTI_WRITER",
    ]);
  });
});

describe("NodeStageVolume", () => {
  it("answers INVALID_ARGUMENT for missing or malformed fields without asking the backend for a device", async () => {
    const d = await fakeDriver();
    const { staging } = await stagingSetup(d);
    const n = d.clients.node;
    await expectCode(
      n.nodeStageVolume({ stagingTargetPath: staging, volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /volume_id/,
    );
    await expectCode(
      n.nodeStageVolume({ volumeId: "vol-1", volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /staging_target_path/,
    );
    await expectCode(
      n.nodeStageVolume({ volumeId: "vol-1", stagingTargetPath: "relative/path", volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /absolute/,
    );
    await expectCode(n.nodeStageVolume({ volumeId: "vol-1", stagingTargetPath: staging }), Code.InvalidArgument, /volume_capability/);
    await expectCode(
      n.nodeStageVolume({
        volumeId: "vol-1",
        stagingTargetPath: staging,
        volumeCapability: mountCapability("", Mode.MULTI_NODE_MULTI_WRITER),
      }),
      Code.FailedPrecondition,
      /MULTI_NODE_MULTI_WRITER/,
    );
    expect(d.nodeBackend.calls.filter((c) => c.method === "attachDevice")).toEqual([]);
  });

  it("passes NOT_FOUND from the backend when the volume has no device here", async () => {
    const d = await fakeDriver();
    const { staging } = await stagingSetup(d);
    await expectCode(
      d.clients.node.nodeStageVolume({ volumeId: "vol-gone", stagingTargetPath: staging, volumeCapability: blockCapability() }),
      Code.NotFound,
      /vol-gone/,
    );
  });

  it("refuses a device that is not a block device with FAILED_PRECONDITION, and detaches it again", async () => {
    const driver = await fakeDriver();
    const { staging, notADevice } = await stagingSetup(driver);
    driver.nodeBackend.addDevice("vol-file", notADevice);
    await expectCode(
      driver.clients.node.nodeStageVolume({ volumeId: "vol-file", stagingTargetPath: staging, volumeCapability: mountCapability() }),
      Code.FailedPrecondition,
      /not a block device/,
    );
    expect(driver.nodeBackend.calls.map((c) => c.method)).toEqual(expect.arrayContaining(["attachDevice", "detachDevice"]));
    expect(driver.nodeBackend.attached().size).toBe(0);
  });

  it("answers ABORTED to a second operation on a volume while the first is in progress", async () => {
    const d = await fakeDriver();
    const { staging, notADevice } = await stagingSetup(d);
    d.nodeBackend.addDevice("vol-busy", notADevice);
    const gate = d.nodeBackend.gate("attachDevice");
    const first = d.clients.node.nodeStageVolume({ volumeId: "vol-busy", stagingTargetPath: staging, volumeCapability: mountCapability() });
    await gate.entered();
    await expectCode(
      d.clients.node.nodeStageVolume({ volumeId: "vol-busy", stagingTargetPath: `${staging}-other`, volumeCapability: mountCapability() }),
      Code.Aborted,
      /NodeStageVolume is already in progress/,
    );
    await expectCode(
      d.clients.node.nodeUnstageVolume({ volumeId: "vol-busy", stagingTargetPath: staging }),
      Code.Aborted,
      /NodeStageVolume is already in progress/,
    );
    gate.release();
    await expectCode(first, Code.FailedPrecondition, /not a block device/);
  });
});

describe("NodePublishVolume", () => {
  it("requires a staging path (the plugin stages volumes) and the other fields", async () => {
    const d = await fakeDriver();
    const { staging } = await stagingSetup(d);
    const n = d.clients.node;
    const target = join(staging, "..", "target");
    await expectCode(
      n.nodePublishVolume({ volumeId: "vol-1", targetPath: target, volumeCapability: mountCapability() }),
      Code.FailedPrecondition,
      /NodeStageVolume/,
    );
    await expectCode(
      n.nodePublishVolume({ volumeId: "vol-1", stagingTargetPath: staging, volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /target_path/,
    );
    await expectCode(
      n.nodePublishVolume({ targetPath: target, stagingTargetPath: staging, volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /volume_id/,
    );
    await expectCode(
      n.nodePublishVolume({ volumeId: "vol-1", targetPath: target, stagingTargetPath: staging }),
      Code.InvalidArgument,
      /volume_capability/,
    );
    expect(d.nodeBackend.calls).toEqual([]);
  });
});
