// @module-tag needs-root
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stateFilePath, volumeImagePath } from "../../src/backend/local/layout.js";
import { isNodeScopedId, newSnapshotId, newVolumeId, volumeNodeOf } from "../../src/backend/local/local-ids.js";
import { parseCommandLine } from "../../src/cli/options.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { CsiServer } from "../../src/csi/server.js";
import {
  ControllerServiceCapability_RPC_Type as ControllerRpc,
  NodeServiceCapability_RPC_Type as NodeRpc,
  PluginCapability_VolumeExpansion_Type,
} from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { createPlugin } from "../../src/plugin.js";
import { cleanHost, hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { blockCapability, df, expectCode, mountCapability } from "./node-harness.js";

// --node-deployment on real loop devices: what the plugin offers, a volume used on its node without
// ControllerPublish, NodeExpandVolume growing the image in the pool, and every RPC refusing another node's ids.

const MiB = 1024n * 1024n;
const NODE = "node-a";
const OTHER = "node-b";

interface Running {
  readonly clients: CsiClients;
  stop(): Promise<void>;
}

/** The plugin as one instance of the DaemonSet runs it, in this process, behind the real gRPC stack. */
async function startPlugin(dir: string, flags: readonly string[]): Promise<Running> {
  const socket = join(dir, "csi.sock");
  const { config } = parseCommandLine(
    ["--backend", "local", "--data-dir", join(dir, "data"), "--endpoint", `unix://${socket}`, "--node-id", NODE, ...flags],
    {},
    "test",
  );
  const plugin = await createPlugin(config, silentLogger);
  const server = await CsiServer.start({
    endpoint: config.endpoint,
    socketMode: 0o600,
    log: silentLogger,
    routes: (router) => plugin.routes(router),
    shutdownTimeoutMs: 5_000,
  }).catch(async (err: unknown) => {
    await plugin.close();
    throw err;
  });
  const clients = connectCsi(`unix://${socket}`);
  return {
    clients,
    async stop() {
      clients.close();
      await server.shutdown();
      await plugin.close();
    },
  };
}

let dir: string;
let running: Running;
let c: CsiClients;
beforeAll(async () => {
  dir = await makeTestDir("node-deployment");
  running = await startPlugin(dir, ["--node-deployment", "--alpha-features", "all"]);
  c = running.clients;
});
afterEach(async () => {
  const left = await hostLeaks(dir);
  await cleanHost(dir);
  expect(left).toEqual([]);
});
afterAll(async () => {
  await running?.stop();
  await cleanHost(dir);
  await removeTestDir(dir);
});

const dataDir = () => join(dir, "data");

/** A staging and a target path whose parent exists, as kubelet prepares them. */
async function volumePaths(name: string): Promise<{ staging: string; target: string }> {
  await mkdir(join(dir, name), { recursive: true });
  return { staging: join(dir, name, "staging"), target: join(dir, name, "target") };
}

async function createVolume(name: string, size: bigint, capability = mountCapability("ext4")): Promise<string> {
  const { volume } = await c.controller.createVolume({ name, capacityRange: { requiredBytes: size }, volumeCapabilities: [capability] });
  return volume?.volumeId ?? "";
}

/** Read a server stream to its end (or its error). */
async function drain(stream: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const _ of stream) count++;
  return count;
}

/** The size the pool's metadata records for a volume: what its capacity counts as promised. */
async function recordedSize(volumeId: string): Promise<number | undefined> {
  const state = JSON.parse(await readFile(stateFilePath(dataDir()), "utf8")) as { volumes: Record<string, { sizeBytes: number }> };
  return state.volumes[volumeId]?.sizeBytes;
}

describe("the ids of a node's volumes and snapshots", () => {
  it("carry the node, fit CSI's 128 bytes with a 63-character node id, and keep the single-node layout's ids valid", () => {
    const longNode = `n${"x".repeat(61)}z`;
    for (const id of [newVolumeId(longNode), newSnapshotId(longNode)]) {
      expect(Buffer.byteLength(id)).toBeLessThanOrEqual(128);
      expect(volumeNodeOf(id)).toBe(longNode);
    }
    expect(newVolumeId("node-1.example.com")).toMatch(/^vol-[0-9a-f-]{36}\.node-1\.example\.com$/);
    expect(volumeNodeOf(newSnapshotId("Node_7"))).toBe("Node_7");
    const legacy = `vol-${randomUUID()}`;
    expect(volumeNodeOf(legacy)).toBeUndefined();
    expect(isNodeScopedId(legacy)).toBe(false);
    expect(volumeNodeOf(`vol-${randomUUID()}.bad/node`)).toBeUndefined();
    expect(() => volumeImagePath("/data", newVolumeId("node-a"))).not.toThrow();
    expect(() => volumeImagePath("/data", `vol-${randomUUID()}.../x`)).toThrow(/invalid local volume id/);
  });
});

describe("capabilities with --node-deployment", () => {
  it("offer no controller publish or expansion, and expansion on the node, online", async () => {
    const controllerRpcs = (await c.controller.controllerGetCapabilities({})).capabilities.flatMap((cap) =>
      cap.type.case === "rpc" ? [cap.type.value.type] : [],
    );
    for (const absent of [
      ControllerRpc.PUBLISH_UNPUBLISH_VOLUME,
      ControllerRpc.EXPAND_VOLUME,
      ControllerRpc.PUBLISH_READONLY,
      ControllerRpc.LIST_VOLUMES_PUBLISHED_NODES,
    ]) {
      expect(controllerRpcs).not.toContain(absent);
    }
    for (const present of [
      ControllerRpc.CREATE_DELETE_VOLUME,
      ControllerRpc.CREATE_DELETE_SNAPSHOT,
      ControllerRpc.CLONE_VOLUME,
      ControllerRpc.LIST_VOLUMES,
      ControllerRpc.LIST_SNAPSHOTS,
      ControllerRpc.GET_CAPACITY,
    ]) {
      expect(controllerRpcs).toContain(present);
    }
    const nodeRpcs = (await c.node.nodeGetCapabilities({})).capabilities.flatMap((cap) =>
      cap.type.case === "rpc" ? [cap.type.value.type] : [],
    );
    expect(nodeRpcs).toEqual(expect.arrayContaining([NodeRpc.STAGE_UNSTAGE_VOLUME, NodeRpc.EXPAND_VOLUME]));
    const plugin = (await c.identity.getPluginCapabilities({})).capabilities;
    expect(
      plugin.some((cap) => cap.type.case === "volumeExpansion" && cap.type.value.type === PluginCapability_VolumeExpansion_Type.ONLINE),
    ).toBe(true);
    expect((await c.identity.getPluginInfo({})).name).toBe("local.csi.do-csi-plugin.io");
    expect((await c.node.nodeGetInfo({})).accessibleTopology?.segments).toEqual({ "local.csi.do-csi-plugin.io/node": NODE });
  });

  it("answer UNIMPLEMENTED for ControllerPublishVolume, ControllerUnpublishVolume and ControllerExpandVolume", async () => {
    const volumeId = await createVolume("unoffered", 16n * MiB);
    await expectCode(
      c.controller.controllerPublishVolume({ volumeId, nodeId: NODE, volumeCapability: mountCapability() }),
      Code.Unimplemented,
      /--node-deployment/,
    );
    await expectCode(c.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE }), Code.Unimplemented, /--node-deployment/);
    await expectCode(
      c.controller.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: 32n * MiB } }),
      Code.Unimplemented,
      /NodeExpandVolume/,
    );
    expect((await stat(volumeImagePath(dataDir(), volumeId))).size).toBe(Number(16n * MiB));
    await c.controller.deleteVolume({ volumeId });
  });
});

describe("a volume used and expanded on its node", () => {
  it("stages without a publish_context, and NodeExpandVolume grows the image, the loop device and the filesystem online", async () => {
    // xfs grows online without CAP_SYS_RESOURCE, which some sandboxes drop even for root (ext4's resize needs it).
    const capability = mountCapability("xfs");
    const volumeId = await createVolume("grown-on-node", 320n * MiB, capability);
    expect(volumeNodeOf(volumeId)).toBe(NODE);
    const { staging, target } = await volumePaths("grow");
    try {
      await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: capability });
      await c.node.nodePublishVolume({ volumeId, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
      await writeFile(join(target, "keep.txt"), "still here");
      const dfBefore = await df(target);

      const grow = { volumeId, volumePath: target, stagingTargetPath: staging, capacityRange: { requiredBytes: 640n * MiB } };
      expect((await c.node.nodeExpandVolume(grow)).capacityBytes).toBe(640n * MiB);
      expect((await stat(volumeImagePath(dataDir(), volumeId))).size).toBe(Number(640n * MiB));
      expect((await df(target)).size - dfBefore.size).toBeGreaterThan(300 * 1024 * 1024);
      expect(await readFile(join(target, "keep.txt"), "utf8")).toBe("still here");
      // The pool accounts for it (what its capacity promises is the recorded size), and the controller reports it.
      expect(await recordedSize(volumeId)).toBe(Number(640n * MiB));
      const listed = (await c.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
      expect(listed?.volume?.capacityBytes).toBe(640n * MiB);

      // Repeating it changes nothing.
      const dfAfter = await df(target);
      expect((await c.node.nodeExpandVolume(grow)).capacityBytes).toBe(640n * MiB);
      expect((await df(target)).size).toBe(dfAfter.size);

      // More than the pool holds: RESOURCE_EXHAUSTED; a limit below the size: OUT_OF_RANGE; neither changes anything.
      await expectCode(
        c.node.nodeExpandVolume({ ...grow, capacityRange: { requiredBytes: 15n * 1024n ** 4n } }),
        Code.ResourceExhausted,
        /not enough capacity for this volume expansion/,
      );
      await expectCode(
        c.node.nodeExpandVolume({ ...grow, capacityRange: { requiredBytes: 0n, limitBytes: 400n * MiB } }),
        Code.OutOfRange,
        /volumes can only grow/,
      );
      expect((await stat(volumeImagePath(dataDir(), volumeId))).size).toBe(Number(640n * MiB));
      expect(await recordedSize(volumeId)).toBe(Number(640n * MiB));

      await c.node.nodeUnpublishVolume({ volumeId, targetPath: target });
      await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });
      await c.controller.deleteVolume({ volumeId });
    } finally {
      await cleanHost(dir);
    }
  });

  it("grows a block volume's image and loop device", async () => {
    const volumeId = await createVolume("grown-block", 16n * MiB, blockCapability());
    const { staging, target } = await volumePaths("block");
    try {
      await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: blockCapability() });
      await c.node.nodePublishVolume({ volumeId, stagingTargetPath: staging, targetPath: target, volumeCapability: blockCapability() });
      const res = await c.node.nodeExpandVolume({
        volumeId,
        volumePath: target,
        stagingTargetPath: staging,
        capacityRange: { requiredBytes: 40n * MiB },
        volumeCapability: blockCapability(),
      });
      expect(res.capacityBytes).toBe(40n * MiB);
      const stats = await c.node.nodeGetVolumeStats({ volumeId, volumePath: target });
      expect(stats.usage[0]?.total).toBe(40n * MiB);
      await c.node.nodeUnpublishVolume({ volumeId, targetPath: target });
      await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });
      await c.controller.deleteVolume({ volumeId });
    } finally {
      await cleanHost(dir);
    }
  });

  it("reports a volume whose image is gone as abnormal, on the node and in ListVolumes", async () => {
    const volumeId = await createVolume("lost-image", 16n * MiB);
    const { staging } = await volumePaths("lost");
    try {
      await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: mountCapability("ext4") });
      const healthy = await c.node.nodeGetVolumeStats({ volumeId, volumePath: staging, stagingTargetPath: staging });
      expect(healthy.volumeCondition?.abnormal).toBe(false);
      // The disk lost the file (an operator's rm, a replaced disk): the loop device still serves the deleted image.
      await rm(volumeImagePath(dataDir(), volumeId));
      const lost = await c.node.nodeGetVolumeStats({ volumeId, volumePath: staging, stagingTargetPath: staging });
      expect(lost.volumeCondition).toMatchObject({ abnormal: true, message: expect.stringMatching(/image .* is missing/) });
      const listed = (await c.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
      expect(listed?.status?.volumeCondition).toMatchObject({ abnormal: true, message: expect.stringMatching(/is missing/) });
      await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });
      await c.controller.deleteVolume({ volumeId });
    } finally {
      await cleanHost(dir);
    }
  });
});

describe("another node's volumes and snapshots", () => {
  const theirVolume = `vol-${randomUUID()}.${OTHER}`;
  const theirSnapshot = `snap-${randomUUID()}.${OTHER}`;
  const bothNodes = new RegExp(`${OTHER}, not on this node \\(${NODE}\\)`);

  it("are refused by every RPC that names them, with NOT_FOUND naming both nodes, and nothing changes", async () => {
    const ours = await createVolume("ours", 16n * MiB);
    const { snapshot } = await c.controller.createSnapshot({ name: "ours-snap", sourceVolumeId: ours });
    const stateBefore = await readFile(stateFilePath(dataDir()), "utf8");
    const { staging, target } = await volumePaths("theirs");
    const capability = mountCapability("ext4");
    const refused: [string, () => Promise<unknown>][] = [
      ["DeleteVolume", () => c.controller.deleteVolume({ volumeId: theirVolume })],
      [
        "ValidateVolumeCapabilities",
        () => c.controller.validateVolumeCapabilities({ volumeId: theirVolume, volumeCapabilities: [capability] }),
      ],
      ["ControllerGetVolume", () => c.controller.controllerGetVolume({ volumeId: theirVolume })],
      ["ControllerModifyVolume", () => c.controller.controllerModifyVolume({ volumeId: theirVolume, mutableParameters: { k: "v" } })],
      [
        "CreateVolume from their volume",
        () =>
          c.controller.createVolume({
            name: "clone-of-theirs",
            volumeCapabilities: [capability],
            volumeContentSource: { type: { case: "volume", value: { volumeId: theirVolume } } },
          }),
      ],
      [
        "CreateVolume from their snapshot",
        () =>
          c.controller.createVolume({
            name: "restore-of-theirs",
            volumeCapabilities: [capability],
            volumeContentSource: { type: { case: "snapshot", value: { snapshotId: theirSnapshot } } },
          }),
      ],
      ["CreateSnapshot", () => c.controller.createSnapshot({ name: "snap-of-theirs", sourceVolumeId: theirVolume })],
      ["DeleteSnapshot", () => c.controller.deleteSnapshot({ snapshotId: theirSnapshot })],
      ["GetSnapshot", () => c.controller.getSnapshot({ snapshotId: theirSnapshot })],
      [
        "NodeStageVolume",
        () => c.node.nodeStageVolume({ volumeId: theirVolume, stagingTargetPath: staging, volumeCapability: capability }),
      ],
      ["NodeUnstageVolume", () => c.node.nodeUnstageVolume({ volumeId: theirVolume, stagingTargetPath: staging })],
      [
        "NodePublishVolume",
        () =>
          c.node.nodePublishVolume({ volumeId: theirVolume, stagingTargetPath: staging, targetPath: target, volumeCapability: capability }),
      ],
      ["NodeUnpublishVolume", () => c.node.nodeUnpublishVolume({ volumeId: theirVolume, targetPath: target })],
      ["NodeGetVolumeStats", () => c.node.nodeGetVolumeStats({ volumeId: theirVolume, volumePath: target })],
      [
        "NodeExpandVolume",
        () => c.node.nodeExpandVolume({ volumeId: theirVolume, volumePath: target, capacityRange: { requiredBytes: MiB } }),
      ],
      ["GetMetadataAllocated", () => drain(c.snapshotMetadata.getMetadataAllocated({ snapshotId: theirSnapshot }))],
      [
        "GetMetadataDelta",
        () => drain(c.snapshotMetadata.getMetadataDelta({ baseSnapshotId: snapshot?.snapshotId ?? "", targetSnapshotId: theirSnapshot })),
      ],
    ];
    for (const [rpc, call] of refused) {
      const message = await expectCode(call(), Code.NotFound).catch((err: unknown) => {
        throw new Error(`${rpc}: ${String(err)}`);
      });
      expect(message, rpc).toMatch(bothNodes);
    }
    // ListSnapshots answers as the spec says for ids it does not hold: an empty list.
    expect((await c.controller.listSnapshots({ snapshotId: theirSnapshot })).entries).toEqual([]);
    expect((await c.controller.listSnapshots({ sourceVolumeId: theirVolume })).entries).toEqual([]);
    // Another node's topology has no capacity here.
    const elsewhere = await c.controller.getCapacity({ accessibleTopology: { segments: { "local.csi.do-csi-plugin.io/node": OTHER } } });
    expect(elsewhere.availableCapacity).toBe(0n);

    expect(await readFile(stateFilePath(dataDir()), "utf8")).toBe(stateBefore);
    await expect(stat(staging)).rejects.toThrow(/ENOENT/);
    await c.controller.deleteSnapshot({ snapshotId: snapshot?.snapshotId ?? "" });
    await c.controller.deleteVolume({ volumeId: ours });
  });

  it("are refused by ControllerPublish, ControllerUnpublish and ControllerExpand of a single-machine plugin too", async () => {
    const single = await makeTestDir("node-deployment-single");
    const plugin = await startPlugin(single, ["--mode", "all"]);
    try {
      const controller = plugin.clients.controller;
      await expectCode(
        controller.controllerPublishVolume({ volumeId: theirVolume, nodeId: NODE, volumeCapability: mountCapability() }),
        Code.NotFound,
        bothNodes,
      );
      await expectCode(controller.controllerUnpublishVolume({ volumeId: theirVolume, nodeId: NODE }), Code.NotFound, bothNodes);
      await expectCode(
        controller.controllerExpandVolume({ volumeId: theirVolume, capacityRange: { requiredBytes: 32n * MiB } }),
        Code.NotFound,
        bothNodes,
      );
    } finally {
      await plugin.stop();
      await removeTestDir(single);
    }
  });
});
