import { createHash } from "node:crypto";
import { join } from "node:path";
import type { NodeBackend } from "../backend/backend.js";
import { FailedPrecondition, MessagePart, NotFound } from "../csi/errors.js";
import type { InFlight } from "../csi/inflight.js";
import {
  blockDeviceNumber,
  blockDeviceSize,
  canGrowOnline,
  filesystemSize,
  inspectMountPoint,
  missingExecutables,
  propagationProblem,
  type DeviceNumber,
  type MountEntry,
  type MountedBlockDevice,
  type MountedFilesystem,
  type MountPointState,
} from "../mounter/index.js";

/** What every node RPC handler works with. */
export interface NodeEnv {
  readonly backend: NodeBackend;
  readonly inflight: InFlight;
  /** Paths below it must be on a shared mount (see propagationProblem). */
  readonly kubeletDir: string;
  /** Alpha: report volume_condition in NodeGetVolumeStats. */
  readonly volumeCondition: boolean;
  /** Alpha: accept the SINGLE_NODE_{SINGLE,MULTI}_WRITER access modes. */
  readonly singleNodeMultiWriter: boolean;
}

/**
 * Name of the file inside the staging directory onto which a block volume's
 * device is bind-mounted. It is the volume id when that is a safe file name,
 * so the staging path says which volume it holds; otherwise a digest of it.
 */
export function blockStagingFile(stagingPath: string, volumeId: string): string {
  const name = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(volumeId)
    ? volumeId
    : `volume-${createHash("sha256").update(volumeId).digest("hex").slice(0, 40)}`;
  return join(stagingPath, name);
}

/** What NodeStageVolume left at a staging path for a volume, if anything. */
export type Staged =
  | { readonly kind: "mount"; readonly mount: MountedFilesystem }
  | { readonly kind: "block"; readonly file: string; readonly mount: MountedBlockDevice };

/** The volume staged at `stagingPath` (canonical): a block-device-backed filesystem mounted there, or the block staging file. */
export async function stagedAt(stagingPath: string, volumeId: string, entries: readonly MountEntry[]): Promise<Staged | undefined> {
  const dir = await inspectMountPoint(stagingPath, entries);
  if (dir.kind === "filesystem" && dir.devicePath !== undefined) return { kind: "mount", mount: dir };
  if (dir.kind !== "directory") return undefined;
  const file = blockStagingFile(stagingPath, volumeId);
  const blockFile = await inspectMountPoint(file, entries);
  if (blockFile.kind === "block") return { kind: "block", file, mount: blockFile };
  return undefined;
}

/** FAILED_PRECONDITION when mounts made at `path` would not reach the kubelet (mount propagation disabled). */
export function requirePropagation(env: NodeEnv, path: string, entries: readonly MountEntry[]): void {
  const problem = propagationProblem(entries, path, env.kubeletDir);
  // The mounter words the problem itself, with the paths echoed by the same rules.
  if (problem !== undefined) throw FailedPrecondition("%s", new MessagePart(problem));
}

/**
 * Device numbers of the volume's devices attached here, when the backend can
 * tell without the publish context; undefined when it cannot.
 */
export async function volumeDeviceNumbers(env: NodeEnv, volumeId: string, signal: AbortSignal): Promise<Set<DeviceNumber> | undefined> {
  if (!env.backend.attachedDevices) return undefined;
  const devices = await env.backend.attachedDevices(volumeId, signal);
  const numbers = await Promise.all(devices.map((d) => blockDeviceNumber(d).catch(() => undefined)));
  return new Set(numbers.filter((n): n is DeviceNumber => n !== undefined));
}

/**
 * NOT_FOUND unless `device` (what a volume_path holds) is the volume's: the
 * same device as the volume staged at staging_target_path when the CO gives
 * it, and one of the volume's attached devices when the backend can tell.
 */
export async function requireVolumeDevice(
  env: NodeEnv,
  volumeId: string,
  volumePath: string,
  device: DeviceNumber,
  stagingPath: string | undefined,
  entries: readonly MountEntry[],
  signal: AbortSignal,
): Promise<void> {
  if (stagingPath !== undefined) {
    const staged = await stagedAt(stagingPath, volumeId, entries);
    if (staged === undefined) throw NotFound("volume %s is not staged at %s", volumeId, stagingPath);
    if (staged.mount.device !== device)
      throw NotFound(
        "%s does not hold volume %s (it holds device %s, the volume staged at %s is %s)",
        volumePath,
        volumeId,
        device,
        stagingPath,
        staged.mount.device,
      );
  }
  const numbers = await volumeDeviceNumbers(env, volumeId, signal);
  if (numbers !== undefined && !numbers.has(device))
    throw NotFound("%s does not hold volume %s (device %s is not attached for it on this node)", volumePath, volumeId, device);
}

/** Growth smaller than this is not worth a resize (filesystems end on block or allocation-group boundaries). */
const GROWTH_THRESHOLD_BYTES = 1024 * 1024;

/** True when the filesystem on `device` is noticeably smaller than the device and can be grown. */
export async function filesystemNeedsGrowth(
  device: string,
  fsType: string,
  mountPoint: string | undefined,
  signal: AbortSignal,
): Promise<boolean> {
  if (!canGrowOnline(fsType)) return false;
  const [deviceBytes, fsBytes] = await Promise.all([blockDeviceSize(device), filesystemSize(device, fsType, mountPoint, signal)]);
  return deviceBytes - fsBytes >= GROWTH_THRESHOLD_BYTES;
}

/** A volume found at a volume_path: its mounted filesystem or its bound device node. */
export type Located = MountedFilesystem | MountedBlockDevice;

/**
 * What a volume_path holds: a mounted block-device filesystem, a device node
 * bound onto a file, or (for a block volume's staging directory) the staging
 * file inside it. Anything else, or "missing", is returned as is.
 */
export async function inspectVolumePath(path: string, volumeId: string, entries: readonly MountEntry[]): Promise<MountPointState> {
  const st = await inspectMountPoint(path, entries);
  if (st.kind !== "directory") return st;
  const staged = await inspectMountPoint(blockStagingFile(path, volumeId), entries);
  return staged.kind === "block" ? staged : st;
}

const FILESYSTEM_TOOLS: Readonly<Record<string, { readonly tools: readonly string[]; readonly pkg: string }>> = {
  ext2: { tools: ["dumpe2fs", "e2fsck", "resize2fs"], pkg: "e2fsprogs" },
  ext3: { tools: ["mkfs.ext3", "dumpe2fs", "e2fsck", "resize2fs"], pkg: "e2fsprogs" },
  ext4: { tools: ["mkfs.ext4", "dumpe2fs", "e2fsck", "resize2fs"], pkg: "e2fsprogs" },
  xfs: { tools: ["mkfs.xfs", "xfs_info", "xfs_growfs"], pkg: "xfsprogs" },
};

/** FAILED_PRECONDITION naming the package to install when the tools for a filesystem type are missing on this node. */
export async function requireFilesystemTools(fsType: string): Promise<void> {
  const needs = FILESYSTEM_TOOLS[fsType];
  if (needs === undefined) return;
  const missing = await missingExecutables(needs.tools);
  if (missing.length > 0)
    throw FailedPrecondition(
      "%s volumes need %s on this node, which is missing; install %s (or use the driver's image)",
      fsType,
      missing.join(", "),
      needs.pkg,
    );
}
