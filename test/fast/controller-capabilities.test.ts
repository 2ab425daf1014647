import { describe, expect, it } from "vitest";
import { ControllerServiceCapability_RPC_Type as Rpc } from "../../src/gen/csi/v1/csi_pb.js";
import { useFakeDrivers, type FakeDriver } from "../fakes/fake-driver.js";
import { FAKE_TOPOLOGY_KEY, GiB, MiB } from "../fakes/memory-controller-backend.js";
import { Code, expectCode, Mode, mountCapability } from "../driver/controller-harness.js";

// Capabilities follow the backend's features and the alpha switches; GetCapacity and the alpha RPCs over the in-memory backend.

const fakeDriver = useFakeDrivers("fast-ctl-caps");

const NO_FEATURES = {
  cloneVolume: false,
  snapshots: false,
  expandVolume: false,
  getCapacity: false,
  publishReadonly: false,
  listPublishedNodes: false,
  volumeCondition: false,
};

async function capabilityNames(d: FakeDriver): Promise<string[]> {
  const { capabilities } = await d.clients.controller.controllerGetCapabilities({});
  return capabilities.map((c) => (c.type.case === "rpc" ? (Rpc[c.type.value.type] ?? "?") : "?"));
}

describe("ControllerGetCapabilities", () => {
  it("offers what the backend's features back, and the alpha ones only when switched on", async () => {
    const ga = ["CREATE_DELETE_VOLUME", "PUBLISH_UNPUBLISH_VOLUME", "LIST_VOLUMES", "LIST_VOLUMES_PUBLISHED_NODES", "GET_CAPACITY"];
    const more = ["CREATE_DELETE_SNAPSHOT", "LIST_SNAPSHOTS", "CLONE_VOLUME", "PUBLISH_READONLY", "EXPAND_VOLUME"];
    expect(await capabilityNames(await fakeDriver())).toEqual([...ga, ...more]);
    const alpha = await fakeDriver({ flags: ["--alpha-features", "all"] });
    expect(await capabilityNames(alpha)).toEqual([
      ...ga,
      ...more,
      "VOLUME_CONDITION",
      "GET_VOLUME",
      "SINGLE_NODE_MULTI_WRITER",
      "GET_SNAPSHOT",
    ]);
  });

  it("offers only the basics for a backend without optional features, even with alpha switches on", async () => {
    const d = await fakeDriver({ controller: { features: NO_FEATURES }, flags: ["--alpha-features", "get-snapshot,volume-condition"] });
    expect(await capabilityNames(d)).toEqual(["CREATE_DELETE_VOLUME", "PUBLISH_UNPUBLISH_VOLUME", "LIST_VOLUMES"]);
  });

  it("answers UNIMPLEMENTED for the RPCs of missing features and alpha RPCs switched off", async () => {
    const d = await fakeDriver({ controller: { features: NO_FEATURES } });
    const c = d.clients.controller;
    await expectCode(c.getCapacity({}), Code.Unimplemented);
    await expectCode(c.createSnapshot({ name: "s", sourceVolumeId: "v" }), Code.Unimplemented);
    await expectCode(c.deleteSnapshot({ snapshotId: "s" }), Code.Unimplemented);
    await expectCode(c.listSnapshots({}), Code.Unimplemented);
    await expectCode(c.getSnapshot({ snapshotId: "s" }), Code.Unimplemented, /get-snapshot/);
    await expectCode(c.controllerGetVolume({ volumeId: "v" }), Code.Unimplemented, /get-volume/);
    await expectCode(c.controllerExpandVolume({ volumeId: "v", capacityRange: { requiredBytes: 1n } }), Code.Unimplemented);
    expect(d.controllerBackend.calls).toEqual([]);
  });
});

describe("GetCapacity", () => {
  it("reports what is left, the largest volume that fits, and 0 for a topology or capability it cannot serve", async () => {
    const d = await fakeDriver({ controller: { capacityBytes: 12 * GiB, sizeRules: { maxBytes: 8 * GiB } } });
    const c = d.clients.controller;
    await c.createVolume({
      name: "used",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(7 * GiB - MiB / 2) },
    });
    const left = await c.getCapacity({ volumeCapabilities: [mountCapability()] });
    expect(left.availableCapacity).toBe(BigInt(5 * GiB));
    expect(left.maximumVolumeSize).toBe(BigInt(5 * GiB));
    expect(left.minimumVolumeSize).toBeUndefined();
    const empty = await fakeDriver({ controller: { capacityBytes: 12 * GiB, sizeRules: { maxBytes: 8 * GiB } } });
    expect((await empty.clients.controller.getCapacity({})).maximumVolumeSize).toBe(BigInt(8 * GiB));
    const elsewhere = await c.getCapacity({ accessibleTopology: { segments: { [FAKE_TOPOLOGY_KEY]: "zone-z" } } });
    expect(elsewhere.availableCapacity).toBe(0n);
    const multi = await c.getCapacity({ volumeCapabilities: [mountCapability("", Mode.MULTI_NODE_MULTI_WRITER)] });
    expect(multi.availableCapacity).toBe(0n);
    await expectCode(c.getCapacity({ parameters: { colour: "blue" } }), Code.InvalidArgument, /colour/);
  });

  it("sends minimum_volume_size once any alpha feature is on", async () => {
    const d = await fakeDriver({ flags: ["--alpha-features", "get-volume"], controller: { sizeRules: { minBytes: 4 * MiB } } });
    expect((await d.clients.controller.getCapacity({})).minimumVolumeSize).toBe(BigInt(4 * MiB));
  });
});

describe("alpha RPCs", () => {
  it("ControllerGetVolume reports published nodes and the backend's volume condition", async () => {
    const d = await fakeDriver({ flags: ["--alpha-features", "all"] });
    const c = d.clients.controller;
    const { volume } = await c.createVolume({ name: "watched", volumeCapabilities: [mountCapability()] });
    const volumeId = volume?.volumeId ?? "";
    await c.controllerPublishVolume({ volumeId, nodeId: "node-2", volumeCapability: mountCapability() });
    d.controllerBackend.setCondition(volumeId, { abnormal: true, message: "bad sectors" });
    const got = await c.controllerGetVolume({ volumeId });
    expect(got.status?.publishedNodeIds).toEqual(["node-2"]);
    expect(got.status?.volumeCondition).toMatchObject({ abnormal: true, message: "bad sectors" });
    await expectCode(c.controllerGetVolume({ volumeId: "vol-9999" }), Code.NotFound);
    await expectCode(c.getSnapshot({ snapshotId: "snap-9999" }), Code.NotFound);
  });

  it("ControllerModifyVolume changes nothing: INVALID_ARGUMENT naming the keys, NOT_FOUND for an unknown volume", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const { volume } = await c.createVolume({ name: "fixed", volumeCapabilities: [mountCapability()] });
    await expectCode(
      c.controllerModifyVolume({ volumeId: volume?.volumeId ?? "" }),
      Code.InvalidArgument,
      /mutable_parameters is required/,
    );
    await expectCode(
      c.controllerModifyVolume({ volumeId: volume?.volumeId ?? "", mutableParameters: { iops: "9" } }),
      Code.InvalidArgument,
      /iops/,
    );
    await expectCode(c.controllerModifyVolume({ volumeId: "vol-9999", mutableParameters: { iops: "9" } }), Code.NotFound);
  });
});
