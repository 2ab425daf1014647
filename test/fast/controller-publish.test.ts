import type { MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import type { VolumeCapabilitySchema } from "../../src/gen/csi/v1/csi_pb.js";
import { useFakeDrivers, type FakeDriver } from "../fakes/fake-driver.js";
import { blockCapability, Code, expectCode, Mode, mountCapability } from "../driver/controller-harness.js";

// ControllerPublishVolume, ControllerUnpublishVolume and ValidateVolumeCapabilities over the in-memory backend.

const fakeDriver = useFakeDrivers("fast-ctl-publish");

type CapabilityInit = MessageInitShape<typeof VolumeCapabilitySchema>;

async function newVolume(d: FakeDriver, name: string, parameters: Record<string, string> = {}): Promise<string> {
  const { volume } = await d.clients.controller.createVolume({ name, volumeCapabilities: [mountCapability()], parameters });
  return volume?.volumeId ?? "";
}

describe("ControllerPublishVolume", () => {
  it("returns the backend's publish_context, is idempotent, and lists the node as published", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = await newVolume(d, "pub");
    const first = await c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability() });
    expect(first.publishContext).toEqual({ devicePath: `/dev/fake/${volumeId}` });
    const again = await c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability() });
    expect(again.publishContext).toEqual(first.publishContext);
    const listed = await c.listVolumes({});
    expect(listed.entries.map((e) => e.status?.publishedNodeIds)).toEqual([["node-1"]]);
  });

  // The backend refuses a second node only for single-node requests: every access mode the service accepts is one.
  it("attaches to one node at a time (FAILED_PRECONDITION) and refuses an incompatible repeat (ALREADY_EXISTS)", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = await newVolume(d, "single");
    await c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability() });
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: "node-2", volumeCapability: mountCapability() }),
      Code.FailedPrecondition,
      /node-1/,
    );
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability(), readonly: true }),
      Code.AlreadyExists,
    );
    await expectCode(c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: blockCapability() }), Code.AlreadyExists);
  });

  it("answers NOT_FOUND for an unknown volume or node, INVALID_ARGUMENT for missing fields and multi-node modes", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = await newVolume(d, "missing");
    await expectCode(
      c.controllerPublishVolume({ volumeId: "vol-9999", nodeId: "node-1", volumeCapability: mountCapability() }),
      Code.NotFound,
    );
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: "node-9", volumeCapability: mountCapability() }),
      Code.NotFound,
      /node-9/,
    );
    const before = d.controllerBackend.calls.length;
    await expectCode(
      c.controllerPublishVolume({ nodeId: "node-1", volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /volume_id/,
    );
    await expectCode(c.controllerPublishVolume({ volumeId, volumeCapability: mountCapability() }), Code.InvalidArgument, /node_id/);
    await expectCode(c.controllerPublishVolume({ volumeId, nodeId: "node-1" }), Code.InvalidArgument, /volume_capability/);
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability("", Mode.MULTI_NODE_MULTI_WRITER) }),
      Code.InvalidArgument,
      /MULTI_NODE_MULTI_WRITER/,
    );
    // None of the malformed requests reached the backend.
    expect(d.controllerBackend.calls.length).toBe(before);
  });

  it("accepts the single-node-multi-writer modes only with the alpha switch", async () => {
    const off = await fakeDriver();
    const offVolume = await newVolume(off, "snmw-off");
    const snmw = mountCapability("", Mode.SINGLE_NODE_MULTI_WRITER);
    await expectCode(
      off.clients.controller.controllerPublishVolume({ volumeId: offVolume, nodeId: "node-1", volumeCapability: snmw }),
      Code.InvalidArgument,
      /single-node-multi-writer/,
    );
    const on = await fakeDriver({ flags: ["--alpha-features", "single-node-multi-writer"] });
    const onVolume = await newVolume(on, "snmw-on");
    await on.clients.controller.controllerPublishVolume({ volumeId: onVolume, nodeId: "node-1", volumeCapability: snmw });
  });
});

describe("ControllerUnpublishVolume", () => {
  it("detaches, is idempotent for unknown volumes and nodes, and without a node_id detaches from every node", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = await newVolume(d, "unpub");
    await c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability() });
    await c.controllerUnpublishVolume({ volumeId, nodeId: "node-2" });
    expect((await c.listVolumes({})).entries[0]?.status?.publishedNodeIds).toEqual(["node-1"]);
    await c.controllerUnpublishVolume({ volumeId });
    expect((await c.listVolumes({})).entries[0]?.status?.publishedNodeIds).toEqual([]);
    await c.controllerUnpublishVolume({ volumeId, nodeId: "node-1" });
    await c.controllerUnpublishVolume({ volumeId: "vol-9999", nodeId: "node-1" });
    await expectCode(c.controllerUnpublishVolume({ nodeId: "node-1" }), Code.InvalidArgument, /volume_id/);
  });
});

describe("ValidateVolumeCapabilities", () => {
  it("confirms exactly what was asked when all of it is supported", async () => {
    const d = await fakeDriver();
    const volumeId = await newVolume(d, "valid", { type: "ssd" });
    const res = await d.clients.controller.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability("xfs"), blockCapability(Mode.SINGLE_NODE_READER_ONLY)],
      parameters: { type: "ssd" },
      volumeContext: { zone: "zone-a" },
    });
    expect(res.message).toBe("");
    expect(res.confirmed?.volumeCapabilities).toHaveLength(2);
    expect(res.confirmed?.parameters).toEqual({ type: "ssd" });
    expect(res.confirmed?.volumeContext).toEqual({ zone: "zone-a" });
  });

  it("confirms nothing, saying why, when a capability, parameter or context entry does not fit", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = await newVolume(d, "picky", { type: "ssd" });
    const cases: {
      reason: RegExp;
      volumeCapabilities: CapabilityInit[];
      parameters?: Record<string, string>;
      volumeContext?: Record<string, string>;
    }[] = [
      { volumeCapabilities: [mountCapability(), mountCapability("", Mode.MULTI_NODE_MULTI_WRITER)], reason: /volume_capabilities\[1\]/ },
      { volumeCapabilities: [mountCapability("zfs")], reason: /zfs/ },
      { volumeCapabilities: [mountCapability()], parameters: { type: "hdd" }, reason: /parameters differ/ },
      { volumeCapabilities: [mountCapability()], parameters: { speed: "fast" }, reason: /"speed"/ },
      { volumeCapabilities: [mountCapability()], volumeContext: { zone: "zone-b" }, reason: /contradicts/ },
    ];
    for (const { reason, ...request } of cases) {
      const res = await c.validateVolumeCapabilities({ volumeId, ...request });
      expect(res.confirmed, JSON.stringify(request.parameters ?? request.volumeContext ?? "")).toBeUndefined();
      expect(res.message).toMatch(reason);
    }
  });

  it("answers NOT_FOUND for an unknown volume and INVALID_ARGUMENT for missing or malformed fields", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = await newVolume(d, "checked");
    await expectCode(c.validateVolumeCapabilities({ volumeId: "vol-9999", volumeCapabilities: [mountCapability()] }), Code.NotFound);
    await expectCode(c.validateVolumeCapabilities({ volumeCapabilities: [mountCapability()] }), Code.InvalidArgument, /volume_id/);
    await expectCode(c.validateVolumeCapabilities({ volumeId }), Code.InvalidArgument, /volume_capabilities/);
    await expectCode(
      c.validateVolumeCapabilities({ volumeId, volumeCapabilities: [{ accessType: { case: "block", value: {} } }] }),
      Code.InvalidArgument,
      /access_mode/,
    );
  });
});
