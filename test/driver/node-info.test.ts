// @module-tag needs-root
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { NodeServiceCapability_RPC_Type as Rpc, VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB, mountCapability, mountEntryAt, startNode, type NodeHarness } from "./node-harness.js";

let plain: NodeHarness;
let alpha: NodeHarness;
beforeAll(async () => {
  plain = await startNode("node-info");
  alpha = await startNode("node-info-alpha", { alpha: ["volume-condition", "single-node-multi-writer"] });
});
afterAll(async () => {
  await plain?.stop();
  await alpha?.stop();
});

function rpcTypes(caps: { type: { case: string | undefined; value?: { type: Rpc } } }[]): Rpc[] {
  return caps.map((c) => (c.type.case === "rpc" && c.type.value ? c.type.value.type : Rpc.UNKNOWN));
}

describe("NodeGetInfo and NodeGetCapabilities", () => {
  it("reports the node id, no volume limit and the local topology", async () => {
    const info = await plain.node.nodeGetInfo({});
    expect(info.nodeId).toBe("test-node");
    expect(info.maxVolumesPerNode).toBe(0n);
    expect(info.accessibleTopology?.segments).toEqual({ "local.csi.do-csi-plugin.io/node": "test-node" });
  });

  it("lists stage/unstage, stats and expansion; alpha capabilities only when switched on", async () => {
    expect(rpcTypes((await plain.node.nodeGetCapabilities({})).capabilities)).toEqual([
      Rpc.STAGE_UNSTAGE_VOLUME,
      Rpc.GET_VOLUME_STATS,
      Rpc.EXPAND_VOLUME,
    ]);
    expect(rpcTypes((await alpha.node.nodeGetCapabilities({})).capabilities)).toEqual([
      Rpc.STAGE_UNSTAGE_VOLUME,
      Rpc.GET_VOLUME_STATS,
      Rpc.EXPAND_VOLUME,
      Rpc.VOLUME_CONDITION,
      Rpc.SINGLE_NODE_MULTI_WRITER,
    ]);
  });

  it("Probe reports ready with the local node backend's checks", async () => {
    expect((await plain.clients.identity.probe({})).ready).toBe(true);
  });
});

describe("SINGLE_NODE_SINGLE_WRITER (alpha)", () => {
  it("allows one publication at a time, while SINGLE_NODE_MULTI_WRITER allows several", async () => {
    const h = alpha;
    for (const [id, mode] of [
      ["one-writer", Mode.SINGLE_NODE_SINGLE_WRITER],
      ["many-writers", Mode.SINGLE_NODE_MULTI_WRITER],
    ] as const) {
      await h.createVolume(id, 64 * MiB);
      const staging = await h.path(id, "staging");
      const cap = mountCapability("ext4", [], mode);
      const t1 = await h.path(id, "t1");
      const t2 = await h.path(id, "t2");
      try {
        await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
        await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: t1, volumeCapability: cap });
        const second = h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: t2, volumeCapability: cap });
        if (mode === Mode.SINGLE_NODE_SINGLE_WRITER) {
          await expect(second).rejects.toMatchObject({ rawMessage: expect.stringMatching(/SINGLE_NODE_SINGLE_WRITER.*already published/) });
          expect(await mountEntryAt(t2)).toBeUndefined();
        } else {
          await second;
          await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: t2 });
        }
        // The first publication can be repeated.
        await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: t1, volumeCapability: cap });
        await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: t1 });
        await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      } finally {
        await h.cleanupHost();
      }
      expect(await h.leftovers()).toEqual([]);
    }
  });
});
