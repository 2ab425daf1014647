import { rm } from "node:fs/promises";
import { join } from "node:path";
import { ControllerServiceCapability_RPC_Type as ControllerCap } from "../../src/gen/csi/v1/csi_pb.js";
import { mountsUnder } from "../support/host-leaks.js";
import { attachmentName, ExternalAttacher } from "./attacher.js";
import type { LifecycleEnvironment } from "./environments.js";
import { Kubelet, type MountedVolume } from "./kubelet.js";
import {
  meta,
  type AccessModeName,
  type DataSource,
  type PersistentVolume,
  type PersistentVolumeClaim,
  type Pod,
  type PodVolume,
  type StorageClass,
  type VolumeAttachment,
  type VolumeMode,
  type VolumeSnapshot,
  type VolumeSnapshotClass,
} from "./objects.js";
import { ExternalProvisioner } from "./provisioner.js";
import { ExternalResizer } from "./resizer.js";
import { DEFAULT_RETRY, RetryStats, type RetryPolicy } from "./retry.js";
import { ExternalSnapshotter } from "./snapshotter.js";

export interface ClusterOptions {
  /** The provisioner's and snapshotter's --extra-create-metadata. */
  readonly extraCreateMetadata?: boolean;
  /** The provisioner's --default-fstype (the DigitalOcean manifests set ext4). */
  readonly defaultFsType?: string;
  readonly retry?: RetryPolicy;
  /** The kubelet's own retries (its operation timeouts differ from the sidecars'); default: `retry`. */
  readonly kubeletRetry?: RetryPolicy;
  readonly nodeName?: string;
  /** The sidecars in their per-node modes beside one instance of a --node-deployment DaemonSet. */
  readonly nodeDeployment?: boolean;
}

let clusters = 0;

/** Each cluster gets a kubelet root of its own, so that a failed scenario cannot spill into the next. */
function kubeletRoot(env: LifecycleEnvironment): string {
  clusters++;
  return join(env.kubeletRoot, `node-${clusters}`);
}

/**
 * One node's worth of Kubernetes around the driver: the external-provisioner,
 * -attacher, -resizer and -snapshotter against the controller, the kubelet
 * against the node plugin, and the API objects they pass between them. The
 * operations run in the order the cluster's controllers impose: attach before
 * mount, unmount (unpublish, then unstage after the last pod) before detach,
 * detach before delete.
 */
export class Cluster {
  readonly stats = new RetryStats();
  readonly provisioner: ExternalProvisioner;
  readonly attacher: ExternalAttacher;
  readonly resizer: ExternalResizer;
  readonly snapshotter: ExternalSnapshotter;
  readonly kubelet: Kubelet;
  readonly nodeName: string;
  readonly attachments = new Map<string, VolumeAttachment>();
  readonly pods = new Map<string, { pod: Pod; mounts: MountedVolume[] }>();
  readonly claims = new Set<PersistentVolumeClaim>();
  readonly snapshots = new Set<VolumeSnapshot>();
  #attachRequired = true;

  private constructor(
    readonly env: LifecycleEnvironment,
    readonly options: ClusterOptions,
  ) {
    const retry = options.retry ?? DEFAULT_RETRY;
    this.nodeName = options.nodeName ?? "lifecycle-node";
    const controller = () => env.controllerClient();
    const node = () => env.nodeClient();
    this.kubelet = new Kubelet(node, {
      root: kubeletRoot(env),
      nodeName: this.nodeName,
      driverName: env.driverName,
      podInfoOnMount: true,
      retry: options.kubeletRetry ?? retry,
      stats: this.stats,
    });
    this.provisioner = new ExternalProvisioner(controller, {
      driverName: env.driverName,
      extraCreateMetadata: options.extraCreateMetadata ?? true,
      defaultFsType: options.defaultFsType ?? "ext4",
      singleNodeMultiWriter: false,
      ...(options.nodeDeployment === true ? { nodeDeployment: { nodeName: this.nodeName } } : {}),
      retry,
      stats: this.stats,
    });
    this.attacher = new ExternalAttacher(controller, {
      driverName: env.driverName,
      singleNodeMultiWriter: false,
      retry,
      stats: this.stats,
    });
    this.resizer = new ExternalResizer(controller, { singleNodeMultiWriter: false, retry, stats: this.stats });
    this.snapshotter = new ExternalSnapshotter(controller, {
      extraCreateMetadata: options.extraCreateMetadata ?? true,
      retry,
      stats: this.stats,
    });
  }

  /** Register the node plugin with the kubelet and learn whether volumes need attaching (PUBLISH_UNPUBLISH_VOLUME). */
  static async start(env: LifecycleEnvironment, options: ClusterOptions = {}): Promise<Cluster> {
    const cluster = new Cluster(env, options);
    await cluster.kubelet.register();
    const caps = await env.controllerClient().controllerGetCapabilities({}, { timeoutMs: 30_000 });
    cluster.#attachRequired = caps.capabilities.some(
      (c) => c.type.case === "rpc" && c.type.value.type === ControllerCap.PUBLISH_UNPUBLISH_VOLUME,
    );
    return cluster;
  }

  /** Whether the driver publishes volumes to nodes (CSIDriver attachRequired). */
  get attachRequired(): boolean {
    return this.#attachRequired;
  }

  storageClass(name: string, parameters: Record<string, string> = {}, mountOptions: string[] = []): StorageClass {
    return { name, provisioner: this.env.driverName, parameters, mountOptions, reclaimPolicy: "Delete", allowVolumeExpansion: true };
  }

  snapshotClass(name: string, parameters: Record<string, string> = {}): VolumeSnapshotClass {
    return { name, driver: this.env.driverName, parameters };
  }

  claim(
    name: string,
    storageClass: StorageClass,
    spec: { bytes?: bigint; accessModes?: AccessModeName[]; volumeMode?: VolumeMode; dataSource?: DataSource; namespace?: string } = {},
  ): PersistentVolumeClaim {
    const claim: PersistentVolumeClaim = {
      metadata: meta(name, spec.namespace),
      storageClass,
      accessModes: spec.accessModes ?? ["ReadWriteOnce"],
      volumeMode: spec.volumeMode ?? "Filesystem",
      requestBytes: spec.bytes ?? this.env.smallBytes,
      ...(spec.dataSource !== undefined ? { dataSource: spec.dataSource } : {}),
    };
    this.claims.add(claim);
    return claim;
  }

  /** Provision a claim for this node (WaitForFirstConsumer: the node's topology is requisite and preferred). */
  async provision(claim: PersistentVolumeClaim): Promise<PersistentVolume> {
    return this.provisioner.provision(claim, this.kubelet.registration.topology);
  }

  /** Schedule a pod on the node: attach each volume (once per node), then the kubelet mounts it. */
  async runPod(name: string, volumes: PodVolume[]): Promise<{ pod: Pod; mounts: MountedVolume[] }> {
    const pod: Pod = { metadata: meta(name), volumes };
    const entry = { pod, mounts: [] as MountedVolume[] };
    this.pods.set(pod.metadata.uid, entry);
    for (const podVolume of volumes) {
      const pv = podVolume.claim.volume;
      if (pv === undefined) throw new Error(`PVC ${podVolume.claim.metadata.name} is not bound`);
      const attachment = this.#attachRequired ? await this.attach(pv) : undefined;
      entry.mounts.push(await this.kubelet.mount(pod, podVolume, attachment));
    }
    return entry;
  }

  async attach(pv: PersistentVolume): Promise<VolumeAttachment> {
    const name = attachmentName(pv.csi.volumeHandle, this.env.driverName, this.nodeName);
    const existing = this.attachments.get(name);
    if (existing?.attached === true) return existing;
    const attachment = await this.attacher.attach(pv, this.nodeName, this.kubelet.registration.nodeId);
    this.attachments.set(name, attachment);
    return attachment;
  }

  /** Delete a pod: the kubelet tears its volumes down, then volumes no pod on the node uses any more are detached. */
  async deletePod(pod: Pod): Promise<void> {
    const entry = this.pods.get(pod.metadata.uid);
    if (entry === undefined) return;
    for (const mounted of [...entry.mounts].reverse()) {
      const { unstaged } = await this.kubelet.unmount(pod, mounted.pv);
      entry.mounts.splice(entry.mounts.indexOf(mounted), 1);
      if (unstaged && this.#attachRequired) await this.detach(mounted.pv);
    }
    this.pods.delete(pod.metadata.uid);
    const podDir = join(this.kubelet.options.root, "pods", pod.metadata.uid);
    if ((await mountsUnder(podDir)).length > 0) throw new Error(`the pod's directory ${podDir} still has mounts`);
    await rm(podDir, { recursive: true, force: true });
  }

  async detach(pv: PersistentVolume): Promise<void> {
    const name = attachmentName(pv.csi.volumeHandle, this.env.driverName, this.nodeName);
    const attachment = this.attachments.get(name);
    if (attachment === undefined || !attachment.attached) return;
    await this.attacher.detach(attachment, pv, this.kubelet.registration.nodeId);
    this.attachments.delete(name);
  }

  /** Delete a claim that no pod uses: reclaim policy Delete removes the volume. */
  async deleteClaim(claim: PersistentVolumeClaim): Promise<void> {
    const pv = claim.volume;
    if (pv !== undefined) {
      const inUse = [...this.pods.values()].some((p) => p.pod.volumes.some((v) => v.claim === claim));
      if (inUse) throw new Error(`PVC ${claim.metadata.name} is still used by a pod`);
      if (pv.reclaimPolicy === "Delete") await this.provisioner.delete(pv, claim.storageClass);
      claim.volume = undefined;
    }
    this.claims.delete(claim);
  }

  /** Grow a claim: ControllerExpandVolume, then NodeExpandVolume through the kubelet of a pod using it (online). */
  async resize(claim: PersistentVolumeClaim, newBytes: bigint): Promise<{ controller: bigint; node: bigint | undefined }> {
    const pv = claim.volume;
    if (pv === undefined) throw new Error(`PVC ${claim.metadata.name} is not bound`);
    claim.requestBytes = newBytes;
    const result = await this.resizer.expand(pv, newBytes);
    let node: bigint | undefined;
    if (result.nodeExpansionRequired && this.kubelet.registration.expand) {
      const user = [...this.pods.values()].find((p) => p.mounts.some((m) => m.pv === pv));
      if (user !== undefined) node = await this.kubelet.expand(user.pod, pv, newBytes);
    }
    return { controller: result.capacityBytes, node };
  }

  async snapshot(name: string, claim: PersistentVolumeClaim, snapshotClass: VolumeSnapshotClass): Promise<VolumeSnapshot> {
    const snapshot: VolumeSnapshot = { metadata: meta(name), source: claim, snapshotClass };
    this.snapshots.add(snapshot);
    await this.snapshotter.snapshot(snapshot);
    return snapshot;
  }

  async deleteSnapshot(snapshot: VolumeSnapshot): Promise<void> {
    if (snapshot.content !== undefined) await this.snapshotter.delete(snapshot.content);
    this.snapshots.delete(snapshot);
  }

  /** Best-effort teardown of everything still around (after a failed test), in the cluster's order. */
  async teardownAll(): Promise<string[]> {
    const errors: string[] = [];
    const attempt = async (what: string, fn: () => Promise<void>) => {
      try {
        await fn();
      } catch (err) {
        errors.push(`${what}: ${(err as Error).message}`);
      }
    };
    for (const { pod } of [...this.pods.values()]) await attempt(`delete pod ${pod.metadata.name}`, () => this.deletePod(pod));
    errors.push(...(await this.kubelet.cleanupUncertain()));
    for (const attachment of [...this.attachments.values()]) {
      const claim = [...this.claims].find((c) => c.volume?.name === attachment.pvName);
      if (claim?.volume !== undefined) {
        const pv = claim.volume;
        await attempt(`detach ${attachment.pvName}`, () => this.detach(pv));
      }
    }
    // Restored volumes first, then snapshots, then their sources.
    const claims = [...this.claims].reverse();
    for (const claim of claims.filter((c) => c.dataSource !== undefined))
      await attempt(`delete PVC ${claim.metadata.name}`, () => this.deleteClaim(claim));
    for (const snapshot of [...this.snapshots])
      await attempt(`delete snapshot ${snapshot.metadata.name}`, () => this.deleteSnapshot(snapshot));
    for (const claim of [...this.claims].reverse()) await attempt(`delete PVC ${claim.metadata.name}`, () => this.deleteClaim(claim));
    return errors;
  }
}
