import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { volumeImagePath } from "../../src/backend/local/layout.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  blockCapability,
  Code,
  DRIVER,
  expectCode,
  MiB,
  Mode,
  mountCapability,
  NODE_ID,
  startController,
  type ControllerHarness,
} from "./controller-harness.js";

// ControllerPublishVolume, ControllerUnpublishVolume and ValidateVolumeCapabilities.

let dir: string;
let h: ControllerHarness;
let n = 0;

beforeAll(async () => {
  dir = await makeTestDir("ctl-publish");
  h = await startController(dir);
});
afterAll(async () => {
  await h?.stop();
  await removeTestDir(dir);
});

async function newVolume(parameters: Record<string, string> = {}): Promise<string> {
  const { volume } = await h.clients.controller.createVolume({
    name: `publish-${++n}`,
    volumeCapabilities: [mountCapability()],
    capacityRange: { requiredBytes: BigInt(8 * MiB) },
    parameters,
  });
  return volume?.volumeId ?? "";
}

async function publishedNodes(volumeId: string): Promise<string[]> {
  const entry = (await h.clients.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
  return entry?.status?.publishedNodeIds ?? [];
}

describe("ControllerPublishVolume", () => {
  it("records the attachment and tells the node where the image is", async () => {
    const volumeId = await newVolume();
    const res = await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability() });
    expect(res.publishContext).toEqual({
      [`${DRIVER}/backing-file`]: volumeImagePath(h.dataDir, volumeId),
      [`${DRIVER}/readonly`]: "false",
    });
    expect(await publishedNodes(volumeId)).toEqual([NODE_ID]);
    // Published compatibly again: OK, same context.
    const again = await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability() });
    expect(again.publishContext).toEqual(res.publishContext);
    expect(await publishedNodes(volumeId)).toEqual([NODE_ID]);
  });

  it("publishes read-only (PUBLISH_READONLY), and refuses an incompatible repeat with ALREADY_EXISTS", async () => {
    const volumeId = await newVolume();
    const ro = await h.clients.controller.controllerPublishVolume({
      volumeId,
      nodeId: NODE_ID,
      volumeCapability: blockCapability(Mode.SINGLE_NODE_READER_ONLY),
      readonly: true,
    });
    expect(ro.publishContext[`${DRIVER}/readonly`]).toBe("true");
    await expectCode(
      h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: blockCapability(), readonly: false }),
      Code.AlreadyExists,
      /already published to node test-node as block \(readonly\)/,
    );
    await expectCode(
      h.clients.controller.controllerPublishVolume({
        volumeId,
        nodeId: NODE_ID,
        volumeCapability: mountCapability("", Mode.SINGLE_NODE_READER_ONLY),
        readonly: true,
      }),
      Code.AlreadyExists,
      /as mount/,
    );
    expect(await publishedNodes(volumeId)).toEqual([NODE_ID]);
  });

  it("answers NOT_FOUND for an unknown volume or node", async () => {
    const volumeId = await newVolume();
    await expectCode(
      h.clients.controller.controllerPublishVolume({ volumeId: "vol-missing", nodeId: NODE_ID, volumeCapability: mountCapability() }),
      Code.NotFound,
      /volume vol-missing/,
    );
    await expectCode(
      h.clients.controller.controllerPublishVolume({ volumeId, nodeId: "other-node", volumeCapability: mountCapability() }),
      Code.NotFound,
      /node other-node does not exist/,
    );
    expect(await publishedNodes(volumeId)).toEqual([]);
  });

  it("answers INVALID_ARGUMENT for missing fields and multi-node modes", async () => {
    const volumeId = await newVolume();
    const c = h.clients.controller;
    await expectCode(
      c.controllerPublishVolume({ nodeId: NODE_ID, volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /volume_id is required/,
    );
    await expectCode(
      c.controllerPublishVolume({ volumeId, volumeCapability: mountCapability() }),
      Code.InvalidArgument,
      /node_id is required/,
    );
    await expectCode(c.controllerPublishVolume({ volumeId, nodeId: NODE_ID }), Code.InvalidArgument, /volume_capability is required/);
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability("", Mode.MULTI_NODE_READER_ONLY) }),
      Code.InvalidArgument,
      /MULTI_NODE_READER_ONLY/,
    );
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: { accessMode: { mode: Mode.SINGLE_NODE_WRITER } } }),
      Code.InvalidArgument,
      /access_type/,
    );
    expect(await publishedNodes(volumeId)).toEqual([]);
  });
});

describe("ControllerUnpublishVolume", () => {
  it("removes the attachment and is idempotent, for unknown volumes and nodes too", async () => {
    const volumeId = await newVolume();
    await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability() });
    await h.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: "some-other-node" });
    expect(await publishedNodes(volumeId)).toEqual([NODE_ID]);
    await h.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID });
    expect(await publishedNodes(volumeId)).toEqual([]);
    await h.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID });
    await h.clients.controller.controllerUnpublishVolume({ volumeId: "vol-missing", nodeId: NODE_ID });
    await expectCode(h.clients.controller.controllerUnpublishVolume({ nodeId: NODE_ID }), Code.InvalidArgument, /volume_id is required/);
  });

  it("without a node_id unpublishes from every node", async () => {
    const volumeId = await newVolume();
    await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability() });
    await h.clients.controller.controllerUnpublishVolume({ volumeId });
    expect(await publishedNodes(volumeId)).toEqual([]);
  });
});

describe("ValidateVolumeCapabilities", () => {
  it("confirms exactly what was asked when all of it is supported", async () => {
    const volumeId = await newVolume({ "csi.storage.k8s.io/pvc/name": "p" });
    const caps = [mountCapability("xfs"), blockCapability(Mode.SINGLE_NODE_READER_ONLY)];
    const res = await h.clients.controller.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: caps,
      parameters: { "csi.storage.k8s.io/pvc/name": "p" },
    });
    expect(res.message).toBe("");
    expect(res.confirmed?.volumeCapabilities).toHaveLength(2);
    expect(res.confirmed?.volumeCapabilities[0]?.accessType).toEqual(expect.objectContaining({ case: "mount" }));
    expect(res.confirmed?.parameters).toEqual({ "csi.storage.k8s.io/pvc/name": "p" });
  });

  it("confirms nothing, with a reason, when anything asked is unsupported or differs", async () => {
    const volumeId = await newVolume();
    const c = h.clients.controller;
    const multi = await c.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability(), mountCapability("", Mode.MULTI_NODE_MULTI_WRITER)],
    });
    expect(multi.confirmed).toBeUndefined();
    expect(multi.message).toMatch(/volume_capabilities\[1\].*MULTI_NODE_MULTI_WRITER is not supported/);
    const fs = await c.validateVolumeCapabilities({ volumeId, volumeCapabilities: [mountCapability("zfs")] });
    expect(fs.confirmed).toBeUndefined();
    expect(fs.message).toMatch(/zfs/);
    const params = await c.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability()],
      parameters: { "csi.storage.k8s.io/pvc/name": "x" },
    });
    expect(params.confirmed).toBeUndefined();
    expect(params.message).toMatch(/parameters differ/);
    const unknown = await c.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability()],
      parameters: { speed: "fast" },
    });
    expect(unknown.confirmed).toBeUndefined();
    expect(unknown.message).toMatch(/"speed"/);
    // Keys the driver never set (e.g. the provisioner's identity on a PV) are not grounds for refusal.
    const context = await c.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability()],
      volumeContext: { "storage.kubernetes.io/csiProvisionerIdentity": "x" },
    });
    expect(context.confirmed?.volumeContext).toEqual({ "storage.kubernetes.io/csiProvisionerIdentity": "x" });
  });

  it("answers NOT_FOUND for an unknown volume and INVALID_ARGUMENT for missing or malformed fields", async () => {
    const volumeId = await newVolume();
    const c = h.clients.controller;
    await expectCode(
      c.validateVolumeCapabilities({ volumeId: "vol-missing", volumeCapabilities: [mountCapability()] }),
      Code.NotFound,
      /vol-missing/,
    );
    await expectCode(
      c.validateVolumeCapabilities({ volumeCapabilities: [mountCapability()] }),
      Code.InvalidArgument,
      /volume_id is required/,
    );
    await expectCode(c.validateVolumeCapabilities({ volumeId }), Code.InvalidArgument, /volume_capabilities is required/);
    await expectCode(
      c.validateVolumeCapabilities({ volumeId, volumeCapabilities: [{ accessType: { case: "block", value: {} } }] }),
      Code.InvalidArgument,
      /access_mode is required/,
    );
  });
});

describe("a volume published to a node that no longer exists", () => {
  it("cannot be published to another node (FAILED_PRECONDITION naming the node) until it is unpublished there", async () => {
    const volumeId = await newVolume();
    await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability() });
    // Restart the controller on the same data dir under another node id (the host was renamed).
    await h.stop();
    h = await startController(dir, ["--node-id", "renamed-node"]);
    const c = h.clients.controller;
    await expectCode(
      c.controllerPublishVolume({ volumeId, nodeId: "renamed-node", volumeCapability: mountCapability() }),
      Code.FailedPrecondition,
      /published to node test-node/,
    );
    await c.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID });
    const res = await c.controllerPublishVolume({ volumeId, nodeId: "renamed-node", volumeCapability: mountCapability() });
    expect(res.publishContext[`${DRIVER}/backing-file`]).toBe(volumeImagePath(h.dataDir, volumeId));
    expect(await publishedNodes(volumeId)).toEqual(["renamed-node"]);
  });
});
