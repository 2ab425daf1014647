import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { snapshotsDir, volumesDir } from "../../src/backend/local/layout.js";
import { LOCAL_DRIVER_NAME } from "../../src/config.js";
import { hostLeaks, cleanHost, mountsUnder } from "../support/host-leaks.js";
import { LoopFilesystem } from "../support/loop-filesystem.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { CapacityPublisher } from "./capacity-publisher.js";
import { Cluster } from "./cluster.js";
import { startLocalEnvironment, type LifecycleEnvironment } from "./environments.js";
import type { MountedVolume } from "./kubelet.js";
import { meta, type DataSource, type PersistentVolumeClaim, type Pod, type StorageClass } from "./objects.js";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry.js";
import { Scheduler, Unschedulable } from "./scheduler.js";

/** One node: its disk (the data dir's own filesystem), its --node-deployment instance, and the sidecars and kubelet beside it. */
export interface ClusterNode {
  readonly name: string;
  readonly disk: LoopFilesystem;
  readonly env: LifecycleEnvironment;
  readonly cluster: Cluster;
}

export interface NodeSpec {
  readonly name: string;
  /** Size of the node's disk, the filesystem its pool lives on. */
  readonly diskBytes: bigint;
}

/** How often a pod is scheduled again (after ResourceExhausted or while nothing fits) before the harness gives up. */
const MAX_SCHEDULING_ATTEMPTS = 30;

/**
 * A Kubernetes cluster of several nodes around the local backend in its
 * distributed layout: one driver process per node (`--node-deployment`, its
 * own `--node-id` and its own data dir on a filesystem of a fixed size), the
 * sidecars in their per-node modes beside each, a capacity publisher and a
 * scheduler that places WaitForFirstConsumer claims by published capacity.
 */
export class MultiNodeCluster {
  readonly publisher: CapacityPublisher;
  readonly scheduler: Scheduler;
  /** Pods scheduled again after their node's instance answered ResourceExhausted. */
  reschedules = 0;
  /** Scheduling attempts that found no node with enough published capacity. */
  unschedulable = 0;

  private constructor(
    readonly dir: string,
    readonly nodes: readonly ClusterNode[],
    /** ext4, the default class. */
    readonly storageClass: StorageClass,
    /** xfs, which grows online without CAP_SYS_RESOURCE (some hosts withhold it even from root; ext4 needs it). */
    readonly xfsStorageClass: StorageClass,
  ) {
    this.publisher = new CapacityPublisher([storageClass, xfsStorageClass]);
    this.scheduler = new Scheduler(
      nodes.map((n) => ({ name: n.name, labels: n.cluster.kubelet.registration.topology })),
      this.publisher,
    );
  }

  /** Make each node's disk, start its instance, register it with its kubelet, and publish every node's capacity. */
  static async start(specs: readonly NodeSpec[], retry: RetryPolicy = DEFAULT_RETRY): Promise<MultiNodeCluster> {
    const dir = await makeTestDir("lifecycle-multinode");
    const nodes: ClusterNode[] = [];
    const disks: LoopFilesystem[] = [];
    try {
      for (const spec of specs) {
        const disk = await LoopFilesystem.create(join(dir, `${spec.name}.disk`), join(dir, `${spec.name}-data`), spec.diskBytes);
        disks.push(disk);
        const env = await startLocalEnvironment({
          dir: join(dir, spec.name),
          nodeId: spec.name,
          dataDir: disk.mountPoint,
          driverArgs: ["--node-deployment"],
        });
        const cluster = await Cluster.start(env, { nodeName: spec.name, nodeDeployment: true, retry });
        nodes.push({ name: spec.name, disk, env, cluster });
      }
    } catch (err) {
      for (const node of nodes) await node.env.close().catch(() => undefined);
      // The disks made so far: unmounted and detached here, not left to the directory sweep.
      for (const disk of disks) await disk.remove().catch(() => undefined);
      await cleanHost(dir);
      await removeTestDir(dir);
      throw err;
    }
    // Both bind WaitForFirstConsumer: the scheduler chooses the node, then the node's provisioner provisions.
    const storageClass = (name: string, fsType: string): StorageClass => ({
      name,
      provisioner: LOCAL_DRIVER_NAME,
      parameters: { "csi.storage.k8s.io/fstype": fsType },
      mountOptions: [],
      reclaimPolicy: "Delete",
      allowVolumeExpansion: true,
    });
    const multi = new MultiNodeCluster(dir, nodes, storageClass("local", "ext4"), storageClass("local-xfs", "xfs"));
    for (const node of nodes) await multi.refreshCapacity(node);
    return multi;
  }

  node(name: string): ClusterNode {
    const node = this.nodes.find((n) => n.name === name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return node;
  }

  /** The node a bound claim's volume lives on (its PersistentVolume's node affinity). */
  nodeOf(claim: PersistentVolumeClaim): ClusterNode {
    const pv = claim.volume;
    if (pv === undefined) throw new Error(`PVC ${claim.metadata.name} is not bound`);
    const node = this.nodes.find((n) =>
      pv.nodeAffinity.some((term) => Object.entries(term).every(([k, v]) => n.cluster.kubelet.registration.topology[k] === v)),
    );
    if (node === undefined) throw new Error(`PV ${pv.name} has no node's topology: ${JSON.stringify(pv.nodeAffinity)}`);
    return node;
  }

  async refreshCapacity(node: ClusterNode): Promise<void> {
    await this.publisher.refresh({ topology: node.cluster.kubelet.registration.topology, controller: () => node.env.controllerClient() });
  }

  /** The capacity published for a node (for the cluster's StorageClass). */
  publishedCapacity(node: ClusterNode, storageClass: StorageClass = this.storageClass): bigint {
    const published = this.publisher.get(storageClass.name, node.cluster.kubelet.registration.topology);
    if (published === undefined) throw new Error(`no capacity published for ${node.name}`);
    return published.capacity;
  }

  claim(name: string, bytes: bigint, spec: { dataSource?: DataSource; storageClass?: StorageClass } = {}): PersistentVolumeClaim {
    const dataSource = spec.dataSource;
    return {
      metadata: meta(name),
      storageClass: spec.storageClass ?? this.storageClass,
      accessModes: ["ReadWriteOnce"],
      volumeMode: "Filesystem",
      requestBytes: bytes,
      ...(dataSource !== undefined ? { dataSource } : {}),
    };
  }

  /**
   * Create a pod using `claims`: the scheduler picks a node (bound claims pin
   * it, unbound ones need published capacity), that node's provisioner
   * provisions the unbound claims, the capacity is published again, and the
   * node's kubelet mounts every volume. A ResourceExhausted answer (capacity
   * published before other claims took it) sends the pod back to the
   * scheduler, as the provisioner's reschedule does.
   */
  async runPod(name: string, claims: readonly PersistentVolumeClaim[]): Promise<{ node: ClusterNode; pod: Pod; mounts: MountedVolume[] }> {
    for (let attempt = 1; ; attempt++) {
      let node: ClusterNode;
      try {
        node = this.node(this.scheduler.schedule(name, claims).name);
      } catch (err) {
        if (!(err instanceof Unschedulable) || attempt >= MAX_SCHEDULING_ATTEMPTS) throw err;
        this.unschedulable++;
        for (const n of this.nodes) await this.refreshCapacity(n);
        continue;
      }
      try {
        for (const claim of claims.filter((c) => c.volume === undefined)) {
          await node.cluster.provision(claim);
          node.cluster.claims.add(claim);
        }
      } catch (err) {
        if (!(err instanceof ConnectError && err.code === Code.ResourceExhausted) || attempt >= MAX_SCHEDULING_ATTEMPTS) throw err;
        this.reschedules++;
        for (const claim of claims) if (claim.volume === undefined) Scheduler.reschedule(claim);
        await this.refreshCapacity(node);
        continue;
      }
      await this.refreshCapacity(node);
      const { pod, mounts } = await node.cluster.runPod(
        name,
        claims.map((claim) => ({ claim, readOnly: false })),
      );
      return { node, pod, mounts };
    }
  }

  /** Image files in a node's pool: volumes and snapshots, as the data dir holds them. */
  async poolFiles(node: ClusterNode): Promise<{ volumes: string[]; snapshots: string[] }> {
    const list = async (dir: string) => (await readdir(dir).catch(() => [])).filter((f) => f.endsWith(".img"));
    return { volumes: await list(volumesDir(node.disk.mountPoint)), snapshots: await list(snapshotsDir(node.disk.mountPoint)) };
  }

  /** Best-effort teardown of what a failed scenario left, node by node, in each cluster's order. */
  async teardownAll(): Promise<string[]> {
    const errors: string[] = [];
    for (const node of this.nodes) errors.push(...(await node.cluster.teardownAll()).map((e) => `${node.name}: ${e}`));
    return errors;
  }

  /**
   * Stop every instance, then check that the host holds nothing of the
   * cluster but the nodes' disks (no volume mount, no volume loop device),
   * remove the disks and check that nothing at all is left. Cleans up
   * everything, and throws afterwards if anything was left.
   */
  async close(): Promise<void> {
    const problems: string[] = [];
    for (const node of this.nodes) {
      try {
        await node.env.close();
      } catch (err) {
        problems.push(`${node.name}: ${(err as Error).message}`);
      }
    }
    const diskMounts = new Set(this.nodes.map((n) => n.disk.mountPoint));
    const diskLoops = this.nodes.map((n) => ` -> ${n.disk.image}`);
    for (const leak of await hostLeaks(this.dir)) {
      const isDisk = diskMounts.has(leak.slice("mount ".length)) || diskLoops.some((suffix) => leak.endsWith(suffix));
      if (!isDisk) problems.push(`left behind with every instance stopped: ${leak}`);
    }
    for (const node of this.nodes) await node.disk.remove().catch((err: Error) => problems.push(`${node.name} disk: ${err.message}`));
    const after = await hostLeaks(this.dir);
    await cleanHost(this.dir);
    problems.push(...after.map((leak) => `after removing the disks: ${leak}`));
    if ((await mountsUnder(this.dir)).length === 0) await removeTestDir(this.dir);
    if (problems.length > 0)
      throw new Error(`the multi-node cluster left host resources behind (now cleaned up):\n  ${problems.join("\n  ")}`);
  }
}
