import { isAbsolute, normalize } from "node:path";
import { FailedPrecondition, InvalidArgument, type CsiError } from "../csi/errors.js";
import { VolumeCapability_AccessMode_Mode as Mode, type CapacityRange, type VolumeCapability } from "../gen/csi/v1/csi_pb.js";
import { MountFlagError, validateMountFlags } from "../mounter/mount-options.js";
import type { StringMap } from "../backend/backend.js";
import { checkMap, checkStringSize } from "./controller-validation.js";

/** Volume-context keys of the Go driver that forbid formatting (reuse of an existing volume). */
export const NO_FORMAT_KEYS = ["dobs.csi.digitalocean.com/noformat", "com.digitalocean.csi.dobs/noformat"] as const;

/** Longest path accepted; Linux's PATH_MAX. */
const MAX_PATH_BYTES = 4096;
/** Longest path component accepted; Linux's NAME_MAX (every local filesystem it mounts volumes on allows this much). */
const MAX_NAME_BYTES = 255;
/** Total size of mount_flags (CSI: 4 KiB). */
const MAX_MOUNT_FLAGS_BYTES = 4096;

/** A volume capability as the node service uses it. */
export interface NodeCapability {
  readonly accessType: "mount" | "block";
  /** Requested filesystem; "" when the CO named none. */
  readonly fsType: string;
  /** Validated single mount options. */
  readonly mountFlags: readonly string[];
  readonly accessMode: Mode;
  /** The access mode only allows reading. */
  readonly readerOnly: boolean;
}

export interface CapabilityRules {
  /** SINGLE_NODE_SINGLE_WRITER / SINGLE_NODE_MULTI_WRITER are accepted (alpha switch). */
  readonly singleNodeMultiWriter: boolean;
  /** Error factory for a capability the volume cannot satisfy (FAILED_PRECONDITION for stage/publish, INVALID_ARGUMENT for expand). */
  readonly unsupported: (message: string, ...args: unknown[]) => CsiError;
}

/** volume_id: REQUIRED, at most CSI's 128 bytes. */
export function requireVolumeId(volumeId: string): string {
  if (volumeId === "") throw InvalidArgument("volume_id is required");
  checkStringSize(volumeId, "volume_id");
  return volumeId;
}

/**
 * The maps a node request carries, within CSI's 4 KiB each. Only their sizes
 * are reported: secrets (and contexts, which may hold credentials) are never echoed.
 */
export function checkNodeMaps(maps: { readonly [field: string]: StringMap }): void {
  for (const [field, map] of Object.entries(maps)) checkMap(map, field);
}

/** A required absolute path, normalised (no trailing slash, no "." or ".." components). */
export function requirePath(value: string, field: string): string {
  if (value === "") throw InvalidArgument("%s is required", field);
  return checkedPath(value, field);
}

/** INVALID_ARGUMENT for a path over PATH_MAX bytes or with a component over NAME_MAX bytes. */
export function checkPathSize(value: string, field: string): void {
  const bytes = Buffer.byteLength(value);
  if (bytes > MAX_PATH_BYTES) throw InvalidArgument("%s is %d bytes long; paths are limited to %d bytes", field, bytes, MAX_PATH_BYTES);
  const longest = Math.max(...value.split("/").map((component) => Buffer.byteLength(component)));
  if (longest > MAX_NAME_BYTES)
    throw InvalidArgument("%s has a component of %d bytes; each name in a path is limited to %d bytes", field, longest, MAX_NAME_BYTES);
}

/**
 * An absolute path within the OS limits (PATH_MAX bytes, NAME_MAX bytes per
 * component), normalised. Checked before the path is looked at: the kernel
 * would answer ENAMETOOLONG, which is the caller's mistake, not the plugin's.
 */
export function checkedPath(value: string, field: string): string {
  checkPathSize(value, field);
  if (!isAbsolute(value)) throw InvalidArgument("%s must be an absolute path, got %s", field, JSON.stringify(value));
  if (value.includes("\0")) throw InvalidArgument("%s must not contain NUL characters", field);
  const path = normalize(value);
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

/**
 * The kernel's ENAMETOOLONG for a path of the request, as INVALID_ARGUMENT.
 * checkedPath already refuses names over NAME_MAX; this covers a filesystem
 * whose own limit is lower. The path itself is not echoed.
 */
export async function answeringLongNames<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof Error && "code" in err && err.code === "ENAMETOOLONG")
      throw InvalidArgument("a path of the request has a name longer than its filesystem allows (ENAMETOOLONG); use shorter names");
    throw err;
  }
}

const READER_ONLY = new Set([Mode.SINGLE_NODE_READER_ONLY, Mode.MULTI_NODE_READER_ONLY]);

/** Parse and validate a volume capability; INVALID_ARGUMENT when malformed, `rules.unsupported` when not satisfiable. */
export function parseCapability(capability: VolumeCapability | undefined, rules: CapabilityRules): NodeCapability {
  if (capability === undefined) throw InvalidArgument("volume_capability is required");
  const mode = capability.accessMode?.mode ?? Mode.UNKNOWN;
  if (mode === Mode.UNKNOWN) throw InvalidArgument("volume_capability.access_mode is required");
  if (Mode[mode] === undefined) throw InvalidArgument("volume_capability.access_mode %d is not a known access mode", mode);
  if (mode === Mode.MULTI_NODE_SINGLE_WRITER || mode === Mode.MULTI_NODE_MULTI_WRITER) {
    throw rules.unsupported("access mode %s is not supported: a block volume can be written from one node only", Mode[mode]);
  }
  if ((mode === Mode.SINGLE_NODE_SINGLE_WRITER || mode === Mode.SINGLE_NODE_MULTI_WRITER) && !rules.singleNodeMultiWriter) {
    throw rules.unsupported("access mode %s is not enabled (alpha feature single-node-multi-writer)", Mode[mode]);
  }
  const readerOnly = READER_ONLY.has(mode);
  switch (capability.accessType.case) {
    case "block":
      return { accessType: "block", fsType: "", mountFlags: [], accessMode: mode, readerOnly };
    case "mount": {
      const mount = capability.accessType.value;
      checkStringSize(mount.fsType, "volume_capability.mount.fs_type");
      const flagBytes = mount.mountFlags.reduce((n, flag) => n + Buffer.byteLength(flag), 0);
      if (flagBytes > MAX_MOUNT_FLAGS_BYTES)
        throw InvalidArgument("volume_capability.mount.mount_flags total %d bytes; the limit is %d", flagBytes, MAX_MOUNT_FLAGS_BYTES);
      checkStringSize(mount.volumeMountGroup, "volume_capability.mount.volume_mount_group");
      if (mount.volumeMountGroup !== "")
        throw InvalidArgument("volume_capability.mount.volume_mount_group is not supported by this plugin");
      const fsType = mount.fsType.trim().toLowerCase();
      if (fsType !== "" && !/^[a-z0-9][a-z0-9._-]{0,31}$/.test(fsType))
        throw InvalidArgument("volume_capability.mount.fs_type %s is not a filesystem type", JSON.stringify(mount.fsType));
      let mountFlags: string[];
      try {
        mountFlags = validateMountFlags(mount.mountFlags);
      } catch (err) {
        if (err instanceof MountFlagError) throw InvalidArgument("volume_capability.mount.mount_flags: %s", err.message);
        throw err;
      }
      return { accessType: "mount", fsType, mountFlags, accessMode: mode, readerOnly };
    }
    default:
      throw InvalidArgument("volume_capability.access_type (block or mount) is required");
  }
}

/** Errors a stage or publish request answers for a capability the volume cannot satisfy ("Exceeds capabilities"). */
export const stageRules = (singleNodeMultiWriter: boolean): CapabilityRules => ({ singleNodeMultiWriter, unsupported: FailedPrecondition });
/** NodeExpandVolume answers INVALID_ARGUMENT for the same condition. */
export const expandRules = (singleNodeMultiWriter: boolean): CapabilityRules => ({ singleNodeMultiWriter, unsupported: InvalidArgument });

/**
 * Whether the volume context forbids formatting. The Go driver honours the
 * mere presence of a no-format key; so does this one, unless its value
 * explicitly says false. Erring towards "do not format" never destroys data.
 */
export function formattingForbidden(volumeContext: StringMap): string | undefined {
  for (const key of NO_FORMAT_KEYS) {
    const value = volumeContext[key];
    if (value === undefined) continue;
    if (/^(false|no|0)$/i.test(value.trim())) continue;
    return key;
  }
  return undefined;
}

/** required_bytes of a capacity range (0 when absent), validated. */
export function requiredBytes(range: CapacityRange | undefined): bigint {
  if (range === undefined) return 0n;
  if (range.requiredBytes < 0n || range.limitBytes < 0n) throw InvalidArgument("capacity_range must not be negative");
  if (range.limitBytes > 0n && range.requiredBytes > range.limitBytes) {
    throw InvalidArgument("capacity_range.required_bytes %s exceeds limit_bytes %s", range.requiredBytes, range.limitBytes);
  }
  return range.requiredBytes;
}
