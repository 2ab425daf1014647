import { createHash } from "node:crypto";
import { join } from "node:path";
import type { NodeBackend } from "../backend/backend.js";
import type { NodeOwnedStorage } from "./volume-growth.js";
import { type CsiError, FailedPrecondition, MessagePart, NotFound } from "../errors.js";
import type { InFlight } from "./inflight.js";
import {
  blockDeviceNumber,
  blockDeviceSize,
  canGrowOnline,
  filesystemSize,
  inspectMountPoint,
  missingExecutables,
  mountBacking,
  mountsAt,
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
  /** The pool NodeExpandVolume grows before the device and the filesystem, when the node owns its storage (--node-deployment). */
  readonly storage?: NodeOwnedStorage;
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
 * tell without the publish context (none for a volume it does not know);
 * undefined when it cannot.
 */
export async function volumeDeviceNumbers(env: NodeEnv, volumeId: string, signal: AbortSignal): Promise<Set<DeviceNumber> | undefined> {
  if (!env.backend.attachedDevices) return undefined;
  const devices = await env.backend.attachedDevices(volumeId, signal);
  const numbers = await Promise.all(devices.map((d) => blockDeviceNumber(d).catch(() => undefined)));
  return new Set(numbers.filter((n): n is DeviceNumber => n !== undefined));
}

/** What stat reports on a mount whose daemon or server connection is gone for good. */
const DEAD_CONNECTION_ERRORS: ReadonlySet<string> = new Set(["ENOTCONN", "ECONNABORTED"]);

/**
 * What the mounts at `path` are when they are not the volume's (so that
 * NodeUnpublishVolume / NodeUnstageVolume must leave them alone); undefined
 * when they are the volume's or `path` is no mount point.
 *
 * The bottom mount of the stack at `path` is the one stage or publish made;
 * whatever is stacked on it (a broken FUSE mount, say) goes with it. It is the
 * volume's when its block device is one of the volume's devices. A backend
 * that cannot list a volume's devices leaves only the kind of mount to judge
 * by: one backed by a block device is taken as the volume's, as that is all
 * stage and publish ever mount. A mount whose block device no longer exists
 * is accepted either way: it holds nobody's reachable data, and refusing it
 * would keep the CO from ever cleaning up after a volume detached under it.
 * So is a lone mount whose connection is gone (a FUSE daemon that died:
 * ENOTCONN), for the same reasons. Any other broken mount is judged by what
 * mountinfo says of it.
 */
export async function foreignMountAt(
  path: string,
  state: MountPointState,
  entries: readonly MountEntry[],
  devices: ReadonlySet<DeviceNumber> | undefined,
): Promise<string | undefined> {
  const stack = mountsAt(entries, path);
  const bottom = stack[0];
  if (bottom === undefined) return undefined;
  if (stack.length === 1 && state.kind === "corrupt" && DEAD_CONNECTION_ERRORS.has(state.code)) return undefined;
  // A device node bound from a /dev that is not devtmpfs (in some containers) is only recognisable by stat, which sees the top mount.
  const backing =
    stack.length === 1 && state.kind === "block" ? ({ kind: "device", device: state.device } as const) : await mountBacking(bottom);
  if (backing.kind === "vanished") return undefined;
  if (backing.kind === "device" && (devices === undefined || devices.has(backing.device))) return undefined;
  return `a ${bottom.fsType} mount of ${bottom.source}${backing.kind === "device" ? ` (device ${backing.device})` : ""}`;
}

/**
 * The answer of NodeUnpublishVolume / NodeUnstageVolume for a path that holds
 * a mount that is not the volume's: nothing is touched, and the code is
 * FAILED_PRECONDITION. The request is well formed (not INVALID_ARGUMENT) and
 * the volume may well exist (not NOT_FOUND, which the spec keeps for an
 * unknown volume_id and which a node cannot tell for every backend); it is
 * the node's state that keeps the call from proceeding until the caller fixes
 * the volume_id or whoever mounted the path removes the mount.
 */
export function notThisVolume(field: string, path: string, holds: string, volumeId: string): CsiError {
  return FailedPrecondition(
    "%s %s holds %s, which is not volume %s; nothing was unmounted: check the volume_id, or unmount what is there",
    field,
    path,
    holds,
    volumeId,
  );
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
