// @module-tag needs-root
import { statfs } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { volumeNodeOf } from "../../src/backend/local/local-ids.js";
import { readMarker, writeMarker } from "../../src/conformance/data.js";
import { ControllerServiceCapability_RPC_Type as ControllerCap } from "../../src/gen/csi/v1/csi_pb.js";
import type { MountedVolume } from "./kubelet.js";
import { MultiNodeCluster, type ClusterNode } from "./multinode-cluster.js";
import type { PersistentVolumeClaim, Pod } from "./objects.js";
import { runPool, throwIfFailed } from "./pool.js";

// The distributed layout of the local backend, as a three-node Kubernetes cluster runs it: one
// --node-deployment instance per node on its own small disk, capacity published per node, a scheduler
// that places WaitForFirstConsumer claims by that capacity, and each node's sidecars and kubelet.

const MiB = 1024n ** 2n;

/** Disks of different sizes: an even spread overflows the smallest, two nodes cannot hold everything. */
const NODES = [
  { name: "node1", diskBytes: 900n * MiB },
  { name: "node2", diskBytes: 600n * MiB },
  { name: "node3", diskBytes: 420n * MiB },
] as const;
const CLAIMS = 60;
const SIZES_MIB = [8n, 16n, 24n, 32n, 48n];
const WORKERS = 6;
/** mkfs.xfs refuses filesystems under 300 MiB. */
const XFS_MIN_BYTES = 320n * MiB;
const GROWTH = 24n * MiB;
const RETRY = { attemptTimeoutMs: 30_000, initialBackoffMs: 20, maxBackoffMs: 500, maxElapsedMs: 120_000 };

interface Running {
  readonly claim: PersistentVolumeClaim;
  readonly node: ClusterNode;
  readonly pod: Pod;
  readonly mount: MountedVolume;
  readonly marker: string;
}

function only<T>(items: readonly T[], what: string): T {
  const [item] = items;
  if (item === undefined || items.length !== 1) throw new Error(`expected one ${what}, got ${items.length}`);
  return item;
}

async function filesystemBytes(path: string): Promise<bigint> {
  const s = await statfs(path, { bigint: true });
  return s.blocks * s.bsize;
}

describe("Kubernetes lifecycle on three nodes, one --node-deployment instance each", () => {
  let cluster: MultiNodeCluster;
  const initial = new Map<string, bigint>();

  beforeAll(async () => {
    cluster = await MultiNodeCluster.start(NODES, RETRY);
    for (const node of cluster.nodes) initial.set(node.name, cluster.publishedCapacity(node));
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
  }, 120_000);

  /** Run a scenario; whatever it leaves behind on failure is torn down, node by node, in each cluster's order. */
  async function withTeardown(body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (err) {
      const errors = await cluster.teardownAll();
      if (errors.length > 0) (err as Error).message += `\nteardown after the failure: ${errors.join("; ")}`;
      throw err;
    }
  }

  it("each instance registers its own node, needs no attach and offers expansion on the node only", async () => {
    for (const node of cluster.nodes) {
      const registration = node.cluster.kubelet.registration;
      expect(registration.nodeId).toBe(node.name);
      expect(registration.topology).toEqual({ [`${node.env.driverName}/node`]: node.name });
      expect(registration.expand).toBe(true);
      expect(node.cluster.attachRequired).toBe(false);
      const caps = await node.env.controllerClient().controllerGetCapabilities({});
      const rpcs = caps.capabilities.flatMap((c) => (c.type.case === "rpc" ? [c.type.value.type] : []));
      expect(rpcs).toContain(ControllerCap.GET_CAPACITY);
      expect(rpcs).not.toContain(ControllerCap.EXPAND_VOLUME);
      expect(rpcs).not.toContain(ControllerCap.PUBLISH_UNPUBLISH_VOLUME);
      // Each instance answers for its own node's topology only.
      for (const other of cluster.nodes.filter((n) => n !== node)) {
        const answer = await node.env.controllerClient().getCapacity({
          accessibleTopology: { segments: { ...other.cluster.kubelet.registration.topology } },
        });
        expect(answer.availableCapacity).toBe(0n);
        // A claim selected for another node, sent here, cannot be provisioned here (as the spec says for
        // accessibility requirements that cannot be met): nothing is created.
        const claim = cluster.claim(`for-${other.name}`, 8n * MiB);
        claim.selectedNode = other.name;
        const request = node.cluster.provisioner.createVolumeRequest(claim, other.cluster.kubelet.registration.topology);
        const refused = await node.env
          .controllerClient()
          .createVolume(request)
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(refused).toBeInstanceOf(ConnectError);
        expect((refused as ConnectError).code).toBe(Code.ResourceExhausted);
      }
      expect(await cluster.poolFiles(node)).toEqual({ volumes: [], snapshots: [] });
    }
    // The disks' sizes show in the published capacity: larger disk, more capacity.
    const [c1, c2, c3] = NODES.map((n) => initial.get(n.name) ?? 0n);
    expect(c1).toBeGreaterThan(c2 ?? 0n);
    expect(c2).toBeGreaterThan(c3 ?? 0n);
    expect(c3).toBeGreaterThan(300n * MiB);
  });

  it("a claim placed on stale published capacity: the node's instance answers ResourceExhausted, the provisioner drops the selected node and the scheduler places the pod elsewhere", async () => {
    await withTeardown(async () => {
      const node1 = cluster.node("node1");
      await cluster.refreshCapacity(node1);
      const published = cluster.publishedCapacity(node1);
      // A claim takes most of node1's pool before its capacity is published again.
      const filler = cluster.claim("filler", published - 64n * MiB);
      filler.selectedNode = node1.name;
      await node1.cluster.provision(filler);
      node1.cluster.claims.add(filler);
      expect(cluster.publishedCapacity(node1)).toBe(published);

      const claim = cluster.claim("late", 128n * MiB);
      const before = cluster.reschedules;
      const { node, pod, mounts } = await cluster.runPod("late-app", [claim]);
      expect(cluster.reschedules).toBe(before + 1);
      expect(node).not.toBe(node1);
      expect(claim.selectedNode).toBe(node.name);
      expect(volumeNodeOf(claim.volume?.csi.volumeHandle ?? "")).toBe(node.name);
      const mount = only(mounts, "mount");
      const marker = await writeMarker(mount.path);
      expect(await readMarker(mount.path)).toBe(marker);

      await node.cluster.deletePod(pod);
      await node.cluster.deleteClaim(claim);
      await node1.cluster.deleteClaim(filler);
      for (const n of cluster.nodes) {
        expect(await cluster.poolFiles(n)).toEqual({ volumes: [], snapshots: [] });
        await cluster.refreshCapacity(n);
        expect(cluster.publishedCapacity(n)).toBeGreaterThan((initial.get(n.name) ?? 0n) - 4n * MiB);
      }
    });
  }, 120_000);

  it("60 claims of mixed sizes spread by capacity, each pod writing and reading on its node; one node SIGKILLed mid-batch; snapshot, restore and online expansion on the node; every pool empty at the end", async () => {
    const sizes = Array.from({ length: CLAIMS }, (_, i) => (SIZES_MIB[i % SIZES_MIB.length] ?? 8n) * MiB);
    const demand = sizes.reduce((a, b) => a + b, 0n);
    const capacities = NODES.map((n) => initial.get(n.name) ?? 0n).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
    // The batch fits only if spread by capacity: no two nodes hold it, and an even spread (every node
    // taking every third claim, capacity ignored) overflows the smallest node.
    expect(demand).toBeGreaterThan((capacities[0] ?? 0n) + (capacities[1] ?? 0n));
    const evenShare = sizes.filter((_, i) => i % NODES.length === NODES.length - 1).reduce((a, b) => a + b, 0n);
    expect(evenShare).toBeGreaterThan(capacities[NODES.length - 1] ?? 0n);
    expect(demand).toBeLessThan(capacities.reduce((a, b) => a + b, 0n));

    const claims = sizes.map((bytes, i) => cluster.claim(`data-${i}`, bytes));
    const victim = cluster.node("node2");
    await withTeardown(async () => {
      const batch = runPool(claims, WORKERS, async (claim, i): Promise<Running> => {
        const { node, pod, mounts } = await cluster.runPod(`app-${i}`, [claim]);
        const mount = only(mounts, "mount");
        const marker = await writeMarker(mount.path);
        expect(await readMarker(mount.path)).toBe(marker);
        return { claim, node, pod, mount, marker };
      });
      // SIGKILL one node's instance once a third of the claims are bound, the batch in full swing.
      const deadline = Date.now() + 60_000;
      while (claims.filter((c) => c.volume !== undefined).length < CLAIMS / 3 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 10));
      const boundAtKill = claims.filter((c) => c.volume !== undefined);
      await victim.env.controller.crashAndRestart(200);
      const { results, errors } = await batch;
      throwIfFailed("the batch across a node's SIGKILL", errors);
      expect(victim.env.controller.restarts).toBe(1);
      // The kill came mid-batch: the node held volumes then and was given more after its restart.
      expect(boundAtKill.length).toBeLessThan(CLAIMS);
      const victimsAtKill = boundAtKill.filter((c) => c.selectedNode === victim.name).length;
      expect(victimsAtKill).toBeGreaterThan(0);
      expect(claims.filter((c) => c.selectedNode === victim.name).length).toBeGreaterThan(victimsAtKill);
      const running = results.map((r) => {
        if (r === undefined) throw new Error("a pod is missing");
        return r;
      });

      // Every node took claims, each volume on the node its pod ran on, with the node in its id and
      // in its PV's node affinity; no pool holds more than it published at the start.
      for (const node of cluster.nodes) {
        const mine = running.filter((r) => r.node === node);
        expect(mine.length).toBeGreaterThan(0);
        const handles = mine.map((r) => r.claim.volume?.csi.volumeHandle ?? "");
        for (const entry of mine) {
          expect(entry.claim.selectedNode).toBe(node.name);
          expect(cluster.nodeOf(entry.claim)).toBe(node);
          expect(volumeNodeOf(entry.claim.volume?.csi.volumeHandle ?? "")).toBe(node.name);
        }
        const pool = await cluster.poolFiles(node);
        expect(pool.volumes.map((f) => f.slice(0, -".img".length)).sort()).toEqual([...handles].sort());
        const listed = (await node.env.backendVolumes()).map((v) => v.id).sort();
        expect(listed).toEqual([...handles].sort());
        const used = mine.reduce((sum, r) => sum + r.claim.requestBytes, 0n);
        expect(used).toBeLessThanOrEqual(initial.get(node.name) ?? 0n);
        // What is published is what the node had, less what its claims took (plus a little metadata).
        await cluster.refreshCapacity(node);
        const published = cluster.publishedCapacity(node);
        expect(published).toBeLessThanOrEqual((initial.get(node.name) ?? 0n) - used);
        expect(published).toBeGreaterThan((initial.get(node.name) ?? 0n) - used - 8n * MiB);
      }
      // Data written before the SIGKILL is still there, through the same mounts.
      for (const entry of running) expect(await readMarker(entry.mount.path)).toBe(entry.marker);

      // Snapshot and restore on each node: the restored claim's pod also uses the source claim, so the
      // scheduler puts it on the source's node, whose provisioner restores from its own snapshot.
      const restores: Running[] = [];
      for (const node of cluster.nodes) {
        // The node's smallest claim (the scheduler decides which sizes each node got: a node may have none of 8 or 16 MiB).
        const [source] = running
          .filter((r) => r.node === node)
          .sort((a, b) => (a.claim.requestBytes < b.claim.requestBytes ? -1 : a.claim.requestBytes > b.claim.requestBytes ? 1 : 0));
        if (source === undefined) throw new Error(`no claim on ${node.name}`);
        const snapshot = await node.cluster.snapshot(`snap-${node.name}`, source.claim, {
          name: "local-snapshots",
          driver: node.env.driverName,
          parameters: {},
        });
        const content = snapshot.content;
        if (content === undefined) throw new Error("snapshot not bound");
        expect(volumeNodeOf(content.snapshotHandle)).toBe(node.name);
        // Another node's instance cannot restore it: the snapshot is not in its pool.
        const other = cluster.nodes.find((n) => n !== node);
        if (other === undefined) throw new Error("one node only");
        const refused = await other.env
          .controllerClient()
          .createVolume({
            name: `misplaced-${node.name}`,
            capacityRange: { requiredBytes: source.claim.requestBytes },
            volumeCapabilities: node.cluster.provisioner.capabilities(source.claim),
            volumeContentSource: { type: { case: "snapshot", value: { snapshotId: content.snapshotHandle } } },
          })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(refused).toBeInstanceOf(ConnectError);
        expect((refused as ConnectError).code).toBe(Code.NotFound);

        const restored = cluster.claim(`restored-${node.name}`, source.claim.requestBytes, {
          dataSource: { kind: "VolumeSnapshot", snapshot },
        });
        const { node: placed, pod, mounts } = await cluster.runPod(`restore-${node.name}`, [source.claim, restored]);
        expect(placed).toBe(node);
        const mount = mounts.find((m) => m.pv === restored.volume);
        if (mount === undefined) throw new Error("restored volume not mounted");
        expect(await readMarker(mount.path)).toBe(source.marker);
        restores.push({ claim: restored, node, pod, mount, marker: source.marker });
      }

      // The batch goes: pods, then claims and snapshots; the restored claims stay, one on each node.
      throwIfFailed(
        "delete pods",
        (await runPool([...restores, ...running], WORKERS, (entry) => entry.node.cluster.deletePod(entry.pod))).errors,
      );
      throwIfFailed("delete claims", (await runPool(running, WORKERS, (entry) => entry.node.cluster.deleteClaim(entry.claim))).errors);
      for (const node of cluster.nodes) for (const snapshot of [...node.cluster.snapshots]) await node.cluster.deleteSnapshot(snapshot);

      // Online expansion through the node, on every node: a pod using the node's restored claim (which
      // pins it there) and a new xfs claim; NodeExpandVolume grows the image, the device and the mounted
      // filesystem, and the node's published capacity shrinks by the growth.
      const growers: Running[] = [];
      for (const restored of restores) {
        const node = restored.node;
        const claim = cluster.claim(`grow-${node.name}`, XFS_MIN_BYTES, { storageClass: cluster.xfsStorageClass });
        const { node: placed, pod, mounts } = await cluster.runPod(`grow-${node.name}`, [restored.claim, claim]);
        expect(placed).toBe(node);
        const kept = mounts.find((m) => m.pv === restored.claim.volume);
        const mount = mounts.find((m) => m.pv === claim.volume);
        if (kept === undefined || mount === undefined) throw new Error("volumes not mounted");
        expect(await readMarker(kept.path)).toBe(restored.marker);
        const marker = await writeMarker(mount.path);
        const pv = claim.volume;
        if (pv === undefined) throw new Error("not bound");

        await cluster.refreshCapacity(node);
        const before = cluster.publishedCapacity(node, cluster.xfsStorageClass);
        const fsBefore = await filesystemBytes(mount.path);
        const newBytes = claim.requestBytes + GROWTH;
        claim.requestBytes = newBytes;
        const grown = await node.cluster.kubelet.expand(pod, pv, newBytes);
        expect(grown).toBeGreaterThanOrEqual(newBytes);
        pv.capacityBytes = grown;
        expect(await filesystemBytes(mount.path)).toBeGreaterThan(fsBefore + GROWTH / 2n);
        expect(await readMarker(mount.path)).toBe(marker);
        await cluster.refreshCapacity(node);
        expect(before - cluster.publishedCapacity(node, cluster.xfsStorageClass)).toBeGreaterThanOrEqual(GROWTH);
        // Not through the controller: the instance does not offer ControllerExpandVolume.
        const controllerExpand = await node.env
          .controllerClient()
          .controllerExpandVolume({ volumeId: pv.csi.volumeHandle, capacityRange: { requiredBytes: newBytes + GROWTH } })
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(controllerExpand).toBeInstanceOf(ConnectError);
        expect((controllerExpand as ConnectError).code).toBe(Code.Unimplemented);
        growers.push({ claim, node, pod, mount, marker }, { ...restored, pod });
      }

      // Teardown: every pool is back to what it published at the start, and empty.
      for (const entry of growers.filter((g, i) => growers.findIndex((h) => h.pod === g.pod) === i))
        await entry.node.cluster.deletePod(entry.pod);
      for (const entry of growers) await entry.node.cluster.deleteClaim(entry.claim);
      for (const node of cluster.nodes) {
        expect(await cluster.poolFiles(node)).toEqual({ volumes: [], snapshots: [] });
        expect(await node.env.backendVolumes()).toEqual([]);
        await cluster.refreshCapacity(node);
        const published = cluster.publishedCapacity(node);
        expect(published).toBeLessThanOrEqual(initial.get(node.name) ?? 0n);
        expect(published).toBeGreaterThan((initial.get(node.name) ?? 0n) - 4n * MiB);
        expect(node.cluster.pods.size).toBe(0);
        expect(node.cluster.claims.size).toBe(0);
        expect(node.cluster.snapshots.size).toBe(0);
        // Nothing was ever attached: the kubelet staged and published without ControllerPublishVolume.
        expect(node.cluster.attachments.size).toBe(0);
      }
    });
  }, 300_000);
});
