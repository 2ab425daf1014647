import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdir, readlink, rm, rmdir, symlink, unlink, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import type { Client } from "@connectrpc/connect";
import { NodeServiceCapability_RPC_Type as NodeCap, type Node } from "../../src/gen/csi/v1/csi_pb.js";
import { pvCapability } from "./attacher.js";
import { mountsUnder } from "../support/host-leaks.js";
import type { PersistentVolume, Pod, PodVolume, VolumeAttachment } from "./objects.js";
import { DEFAULT_RETRY, withRetries, type RetryPolicy, type RetryStats } from "./retry.js";

const exec = promisify(execFile);

export interface KubeletOptions {
  /** The kubelet's --root-dir (a test directory, never /var/lib/kubelet). */
  readonly root: string;
  readonly nodeName: string;
  readonly driverName: string;
  /** CSIDriver.spec.podInfoOnMount: add the pod's identity to NodePublishVolume's volume_context. */
  readonly podInfoOnMount: boolean;
  readonly retry?: RetryPolicy;
  readonly stats?: RetryStats;
}

export interface NodeRegistration {
  readonly nodeId: string;
  readonly topology: Readonly<Record<string, string>>;
  readonly maxVolumesPerNode: bigint;
  readonly stageUnstage: boolean;
  readonly expand: boolean;
  readonly singleNodeMultiWriter: boolean;
}

/** What a running pod's container sees for one volume. */
export interface MountedVolume {
  readonly pod: Pod;
  readonly pv: PersistentVolume;
  /** The directory (Filesystem) or device link (Block) inside the pod's directory. */
  readonly path: string;
  /** The target_path given to NodePublishVolume. */
  readonly publishPath: string;
  readonly stagingPath: string;
  /** Block only: the kubelet's loop device holding the device open (its "descriptor lock"). */
  readonly lockDevice?: string;
}

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * The kubelet's CSI volume manager, replayed: plugin registration
 * (NodeGetInfo), MountDevice (NodeStageVolume, once per volume and node, at
 * plugins/kubernetes.io/csi/<driver>/<sha256(volumeHandle)>/globalmount),
 * SetUp (NodePublishVolume to pods/<uid>/volumes/kubernetes.io~csi/<pv>/mount),
 * and for raw block volumes the volumeDevices staging/publish paths, the
 * global map bind mount, the pod's device link and the loop "descriptor lock";
 * teardown in reverse, removing its own directories the way the kubelet does.
 */
export class Kubelet {
  #registration: NodeRegistration | undefined;
  /** Pods using each staged volume (the kubelet's reference count for UnmountDevice). */
  readonly #users = new Map<string, Set<string>>();
  readonly #mounted = new Map<string, MountedVolume>();
  /**
   * Stagings and publications whose call failed: the kubelet treats them as
   * "uncertain" and calls NodeUnpublishVolume / NodeUnstageVolume for them
   * when it cleans up, since the driver may have done part of the work.
   */
  readonly #uncertain = new Map<string, { kind: "stage" | "publish"; volumeId: string; path: string }>();

  constructor(
    private readonly node: () => Client<typeof Node>,
    readonly options: KubeletOptions,
  ) {}

  get registration(): NodeRegistration {
    if (this.#registration === undefined) throw new Error("the kubelet has not registered the plugin yet");
    return this.#registration;
  }

  /** Plugin registration: NodeGetInfo and NodeGetCapabilities, as the kubelet does when the plugin's socket appears. */
  async register(): Promise<NodeRegistration> {
    const retry = this.options.retry ?? DEFAULT_RETRY;
    const info = await withRetries("NodeGetInfo", (o) => this.node().nodeGetInfo({}, o), retry, this.options.stats);
    const caps = await withRetries("NodeGetCapabilities", (o) => this.node().nodeGetCapabilities({}, o), retry, this.options.stats);
    const types = new Set(caps.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : NodeCap.UNKNOWN)));
    this.#registration = {
      nodeId: info.nodeId,
      topology: { ...info.accessibleTopology?.segments },
      maxVolumesPerNode: info.maxVolumesPerNode,
      stageUnstage: types.has(NodeCap.STAGE_UNSTAGE_VOLUME),
      expand: types.has(NodeCap.EXPAND_VOLUME),
      singleNodeMultiWriter: types.has(NodeCap.SINGLE_NODE_MULTI_WRITER),
    };
    return this.#registration;
  }

  private get csiDir(): string {
    return join(this.options.root, "plugins", "kubernetes.io", "csi");
  }

  /** Where NodeStageVolume stages the volume. */
  stagingPath(pv: PersistentVolume): string {
    if (pv.volumeMode === "Block") return join(this.csiDir, "volumeDevices", "staging", pv.name);
    return join(this.csiDir, this.options.driverName, sha256(pv.csi.volumeHandle), "globalmount");
  }

  /** The target_path of NodePublishVolume for a pod. */
  publishPath(pod: Pod, pv: PersistentVolume): string {
    if (pv.volumeMode === "Block") return join(this.csiDir, "volumeDevices", "publish", pv.name, pod.metadata.uid);
    return join(this.options.root, "pods", pod.metadata.uid, "volumes", "kubernetes.io~csi", pv.name, "mount");
  }

  /** Block only: the device link in the pod's directory. */
  podDevicePath(pod: Pod, pv: PersistentVolume): string {
    return join(this.options.root, "pods", pod.metadata.uid, "volumeDevices", "kubernetes.io~csi", pv.name);
  }

  private globalMapFile(pod: Pod, pv: PersistentVolume): string {
    return join(this.csiDir, "volumeDevices", pv.name, "dev", pod.metadata.uid);
  }

  mounted(pod: Pod, pv: PersistentVolume): MountedVolume | undefined {
    return this.#mounted.get(`${pod.metadata.uid}/${pv.name}`);
  }

  private async volData(dir: string, pv: PersistentVolume, attachment: VolumeAttachment | undefined): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const data = {
      specVolID: pv.name,
      volumeHandle: pv.csi.volumeHandle,
      driverName: this.options.driverName,
      nodeName: this.options.nodeName,
      attachmentID: attachment?.name ?? "",
      volumeLifecycleMode: "Persistent",
    };
    await writeFile(join(dir, "vol_data.json"), JSON.stringify(data));
  }

  /** Make a pod's volume available: MountDevice (NodeStageVolume) once per volume, then SetUp (NodePublishVolume), then the block mapping. */
  async mount(pod: Pod, podVolume: PodVolume, attachment: VolumeAttachment | undefined): Promise<MountedVolume> {
    const reg = this.registration;
    const pv = podVolume.claim.volume;
    if (pv === undefined) throw new Error(`PVC ${podVolume.claim.metadata.name} is not bound`);
    const retry = this.options.retry ?? DEFAULT_RETRY;
    const capability = pvCapability(pv, reg.singleNodeMultiWriter);
    const publishContext = attachment?.attachmentMetadata ?? {};
    const stagingPath = this.stagingPath(pv);

    let users = this.#users.get(pv.name);
    if (users === undefined) {
      users = new Set();
      this.#users.set(pv.name, users);
      if (pv.volumeMode === "Filesystem") await this.volData(dirname(stagingPath), pv, attachment);
      if (reg.stageUnstage) {
        await mkdir(stagingPath, { recursive: true, mode: 0o750 });
        try {
          await withRetries(
            `NodeStageVolume ${pv.csi.volumeHandle}`,
            (o) =>
              this.node().nodeStageVolume(
                {
                  volumeId: pv.csi.volumeHandle,
                  publishContext,
                  stagingTargetPath: stagingPath,
                  volumeCapability: capability,
                  volumeContext: { ...pv.csi.volumeAttributes },
                },
                o,
              ),
            retry,
            this.options.stats,
          );
        } catch (err) {
          this.#users.delete(pv.name);
          this.#uncertain.set(`stage:${stagingPath}`, { kind: "stage", volumeId: pv.csi.volumeHandle, path: stagingPath });
          throw err;
        }
      }
    }
    users.add(pod.metadata.uid);

    const publishPath = this.publishPath(pod, pv);
    if (pv.volumeMode === "Filesystem") await this.volData(dirname(publishPath), pv, attachment);
    else await mkdir(dirname(publishPath), { recursive: true, mode: 0o750 });
    const volumeContext: Record<string, string> = { ...pv.csi.volumeAttributes };
    if (this.options.podInfoOnMount) {
      volumeContext["csi.storage.k8s.io/pod.name"] = pod.metadata.name;
      volumeContext["csi.storage.k8s.io/pod.namespace"] = pod.metadata.namespace;
      volumeContext["csi.storage.k8s.io/pod.uid"] = pod.metadata.uid;
      volumeContext["csi.storage.k8s.io/serviceAccount.name"] = "default";
      volumeContext["csi.storage.k8s.io/ephemeral"] = "false";
    }
    this.#uncertain.set(`publish:${publishPath}`, { kind: "publish", volumeId: pv.csi.volumeHandle, path: publishPath });
    await withRetries(
      `NodePublishVolume ${pv.csi.volumeHandle} for pod ${pod.metadata.name}`,
      (o) =>
        this.node().nodePublishVolume(
          {
            volumeId: pv.csi.volumeHandle,
            publishContext,
            stagingTargetPath: reg.stageUnstage ? stagingPath : "",
            targetPath: publishPath,
            volumeCapability: capability,
            readonly: podVolume.readOnly || pv.csi.readOnly,
            volumeContext,
          },
          o,
        ),
      retry,
      this.options.stats,
    );

    this.#uncertain.delete(`publish:${publishPath}`);
    let mounted: MountedVolume;
    if (pv.volumeMode === "Block") {
      // MapBlockVolume: bind the published device onto the global map file, link it into the pod, and hold it open with a loop device.
      const mapFile = this.globalMapFile(pod, pv);
      await mkdir(dirname(mapFile), { recursive: true, mode: 0o750 });
      await writeFile(mapFile, "");
      await exec("mount", ["--bind", publishPath, mapFile]);
      const link = this.podDevicePath(pod, pv);
      await mkdir(dirname(link), { recursive: true, mode: 0o750 });
      await symlink(publishPath, link);
      const { stdout } = await exec("losetup", ["-f", "--show", mapFile]);
      mounted = { pod, pv, path: link, publishPath, stagingPath, lockDevice: stdout.trim() };
    } else {
      mounted = { pod, pv, path: publishPath, publishPath, stagingPath };
    }
    this.#mounted.set(`${pod.metadata.uid}/${pv.name}`, mounted);
    return mounted;
  }

  /** Tear a pod's volume down: unmap (block), TearDown (NodeUnpublishVolume), and UnmountDevice (NodeUnstageVolume) after the last pod. */
  async unmount(pod: Pod, pv: PersistentVolume): Promise<{ unstaged: boolean }> {
    const key = `${pod.metadata.uid}/${pv.name}`;
    const mounted = this.#mounted.get(key);
    if (mounted === undefined) throw new Error(`volume ${pv.name} is not mounted for pod ${pod.metadata.name}`);
    const retry = this.options.retry ?? DEFAULT_RETRY;

    if (pv.volumeMode === "Block") {
      if (mounted.lockDevice !== undefined) await exec("losetup", ["-d", mounted.lockDevice]);
      const link = this.podDevicePath(pod, pv);
      if ((await readlink(link)) !== mounted.publishPath) throw new Error(`${link} does not point at ${mounted.publishPath}`);
      await unlink(link);
      const mapFile = this.globalMapFile(pod, pv);
      await exec("umount", [mapFile]);
      await unlink(mapFile);
    }

    await withRetries(
      `NodeUnpublishVolume ${pv.csi.volumeHandle} for pod ${pod.metadata.name}`,
      (o) => this.node().nodeUnpublishVolume({ volumeId: pv.csi.volumeHandle, targetPath: mounted.publishPath }, o),
      retry,
      this.options.stats,
    );
    // The kubelet removes its own directories, and only empty ones: a mount left behind makes this fail.
    await this.removeDir(dirname(mounted.publishPath), pv.volumeMode === "Filesystem");
    this.#mounted.delete(key);

    const users = this.#users.get(pv.name);
    users?.delete(pod.metadata.uid);
    if (users !== undefined && users.size > 0) return { unstaged: false };
    this.#users.delete(pv.name);
    if (this.registration.stageUnstage) {
      await withRetries(
        `NodeUnstageVolume ${pv.csi.volumeHandle}`,
        (o) => this.node().nodeUnstageVolume({ volumeId: pv.csi.volumeHandle, stagingTargetPath: mounted.stagingPath }, o),
        retry,
        this.options.stats,
      );
    }
    if (pv.volumeMode === "Block") {
      await this.removeDir(mounted.stagingPath, false);
      await rmdir(dirname(this.globalMapFile(pod, pv)));
      await rmdir(dirname(dirname(this.globalMapFile(pod, pv))));
    } else {
      await this.removeDir(mounted.stagingPath, false);
      await this.removeDir(dirname(mounted.stagingPath), true);
    }
    return { unstaged: true };
  }

  /** Remove a directory the kubelet made, refusing if anything is still mounted below it. */
  private async removeDir(dir: string, withVolData: boolean): Promise<void> {
    const mounts = await mountsUnder(dir);
    if (mounts.length > 0) throw new Error(`still mounted below ${dir} after the driver's teardown: ${mounts.join(", ")}`);
    if (withVolData) await rm(join(dir, "vol_data.json"), { force: true });
    // A target the driver failed to remove is left for the check that looks for it; rmdir fails then.
    await rmdir(join(dir, "mount")).catch(() => undefined);
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== "ENOENT") throw new Error(`cannot remove ${dir}: ${err.message} (did the driver leave its target behind?)`);
    });
  }

  /** The kubelet's part of a resize: NodeExpandVolume on the pod's published path, with the staging path. */
  async expand(pod: Pod, pv: PersistentVolume, newBytes: bigint): Promise<bigint> {
    const mounted = this.mounted(pod, pv);
    if (mounted === undefined) throw new Error(`volume ${pv.name} is not mounted for pod ${pod.metadata.name}`);
    const response = await withRetries(
      `NodeExpandVolume ${pv.csi.volumeHandle}`,
      (o) =>
        this.node().nodeExpandVolume(
          {
            volumeId: pv.csi.volumeHandle,
            volumePath: mounted.publishPath,
            stagingTargetPath: this.registration.stageUnstage ? mounted.stagingPath : "",
            capacityRange: { requiredBytes: newBytes },
            volumeCapability: pvCapability(pv, this.registration.singleNodeMultiWriter),
          },
          o,
        ),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
    return response.capacityBytes;
  }

  /** What the kubelet's volume stats collector asks for. */
  async volumeStats(pod: Pod, pv: PersistentVolume) {
    const mounted = this.mounted(pod, pv);
    if (mounted === undefined) throw new Error(`volume ${pv.name} is not mounted for pod ${pod.metadata.name}`);
    return withRetries(
      `NodeGetVolumeStats ${pv.csi.volumeHandle}`,
      (o) =>
        this.node().nodeGetVolumeStats(
          {
            volumeId: pv.csi.volumeHandle,
            volumePath: mounted.publishPath,
            stagingTargetPath: this.registration.stageUnstage ? mounted.stagingPath : "",
          },
          o,
        ),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
  }

  /**
   * Clean up after failed calls as the kubelet's reconciler does: unpublish
   * uncertain publications, then unstage uncertain stagings, and remove their
   * directories. Returns what failed.
   */
  async cleanupUncertain(): Promise<string[]> {
    const errors: string[] = [];
    const retry = this.options.retry ?? DEFAULT_RETRY;
    const entries = [...this.#uncertain.values()].sort((a, b) => (a.kind === b.kind ? 0 : a.kind === "publish" ? -1 : 1));
    for (const entry of entries) {
      try {
        if (entry.kind === "publish") {
          await withRetries(
            `NodeUnpublishVolume ${entry.volumeId}`,
            (o) => this.node().nodeUnpublishVolume({ volumeId: entry.volumeId, targetPath: entry.path }, o),
            retry,
          );
        } else {
          await withRetries(
            `NodeUnstageVolume ${entry.volumeId}`,
            (o) => this.node().nodeUnstageVolume({ volumeId: entry.volumeId, stagingTargetPath: entry.path }, o),
            retry,
          );
          await this.removeDir(entry.path, false);
          if (entry.path.endsWith("/globalmount")) await this.removeDir(dirname(entry.path), true);
        }
        this.#uncertain.delete(`${entry.kind}:${entry.path}`);
      } catch (err) {
        errors.push(`${entry.kind} ${entry.path}: ${(err as Error).message}`);
      }
    }
    return errors;
  }

  /** Everything still mounted through this kubelet (for emergency cleanup). */
  allMounted(): MountedVolume[] {
    return [...this.#mounted.values()];
  }
}
