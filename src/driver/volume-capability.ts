import { VolumeCapability_AccessMode_Mode as AccessMode, type VolumeCapability } from "../gen/csi/v1/csi_pb.js";
import type { AccessType } from "../backend/backend.js";
import { InvalidArgument, messagePart, type MessagePart } from "../csi/errors.js";
import { stringSizeProblem } from "./controller-validation.js";

/**
 * What a single-node block device (a DigitalOcean volume, a local loop device)
 * can offer: it is attached to one node at a time, used raw or with one of a
 * few filesystems. These rules are the same for every backend.
 */

/** Filesystems the node service can create and grow; "" lets it choose (ext4). */
export const SUPPORTED_FS_TYPES: readonly string[] = ["ext4", "ext3", "xfs"];

/** Total size limit of mount_flags (CSI: 4 KiB). */
const MAX_MOUNT_FLAGS_BYTES = 4096;

export interface CapabilityPolicy {
  /** The single-node-multi-writer alpha switch: SINGLE_NODE_SINGLE_WRITER and SINGLE_NODE_MULTI_WRITER are accepted. */
  readonly singleNodeMultiWriter: boolean;
}

export interface CheckedCapability {
  readonly accessType: AccessType;
  /** Requested filesystem of a mount capability, "" when none was named or for block. */
  readonly fsType: string;
  readonly mode: AccessMode;
}

/**
 * A capability that cannot be used: `malformed` when the request itself is
 * broken (a required part is missing), otherwise well-formed but not supported
 * by this driver (a MULTI_NODE mode, an unknown filesystem).
 */
export interface RejectedCapability {
  readonly malformed: boolean;
  readonly reason: MessagePart;
}

export type CapabilityCheck = { readonly ok: true; readonly capability: CheckedCapability } | ({ readonly ok: false } & RejectedCapability);

export function accessModeName(mode: AccessMode): string {
  return AccessMode[mode] ?? `mode ${mode}`;
}

function supportedModes(policy: CapabilityPolicy): AccessMode[] {
  const modes = [AccessMode.SINGLE_NODE_WRITER, AccessMode.SINGLE_NODE_READER_ONLY];
  if (policy.singleNodeMultiWriter) modes.push(AccessMode.SINGLE_NODE_SINGLE_WRITER, AccessMode.SINGLE_NODE_MULTI_WRITER);
  return modes;
}

/** Check one capability; `field` names it in messages, e.g. "volume_capabilities[1]". */
export function checkCapability(capability: VolumeCapability, policy: CapabilityPolicy, field: string): CapabilityCheck {
  const rejected = (malformed: boolean, reason: MessagePart): CapabilityCheck => ({
    ok: false,
    malformed,
    reason: messagePart("%s: %s", field, reason),
  });
  const accessType = capability.accessType;
  if (accessType.case === undefined) return rejected(true, messagePart("access_type is required: set block or mount"));
  const mode = capability.accessMode?.mode ?? AccessMode.UNKNOWN;
  if (mode === AccessMode.UNKNOWN) {
    return rejected(true, messagePart("access_mode is required: set SINGLE_NODE_WRITER or SINGLE_NODE_READER_ONLY"));
  }
  const allowed = supportedModes(policy);
  if (!allowed.includes(mode)) {
    const name = accessModeName(mode);
    const why = name.startsWith("MULTI_NODE")
      ? "a block volume is attached to one node at a time"
      : "it is an alpha access mode and the single-node-multi-writer alpha feature is off";
    return rejected(false, messagePart("access mode %s is not supported: %s; use %s", name, why, allowed.map(accessModeName).join(" or ")));
  }
  if (accessType.case === "block") return { ok: true, capability: { accessType: "block", fsType: "", mode } };

  const mount = accessType.value;
  const fsType = mount.fsType;
  // Sizes first: an oversized field is a malformed request, whatever it holds.
  const oversized = stringSizeProblem(fsType, "fs_type") ?? stringSizeProblem(mount.volumeMountGroup, "volume_mount_group");
  if (oversized !== undefined) return rejected(true, oversized);
  const flagBytes = mount.mountFlags.reduce((n, flag) => n + Buffer.byteLength(flag), 0);
  if (flagBytes > MAX_MOUNT_FLAGS_BYTES) {
    return rejected(true, messagePart("mount_flags total %d bytes; CSI limits them to 4 KiB", flagBytes));
  }
  if (fsType !== "" && !SUPPORTED_FS_TYPES.includes(fsType)) {
    return rejected(
      false,
      messagePart("fs_type %q is not supported: use %s or leave it empty for ext4", fsType, SUPPORTED_FS_TYPES.join(", ")),
    );
  }
  return { ok: true, capability: { accessType: "mount", fsType, mode } };
}

/** A capability the call cannot proceed without; anything wrong with it is INVALID_ARGUMENT. */
export function requireCapability(capability: VolumeCapability | undefined, policy: CapabilityPolicy, field: string): CheckedCapability {
  if (capability === undefined)
    throw InvalidArgument("%s is required: say how the volume will be used (block or mount, and an access mode)", field);
  const check = checkCapability(capability, policy, field);
  if (!check.ok) throw InvalidArgument("%s", check.reason);
  return check.capability;
}

export interface CapabilitySet {
  readonly accessTypes: readonly AccessType[];
  /** The one filesystem named by the mount capabilities, "" if none. */
  readonly fsType: string;
  readonly capabilities: readonly CheckedCapability[];
}

/** Every capability of a CreateVolume request must be usable; they may not ask for two different filesystems. */
export function requireCapabilities(capabilities: readonly VolumeCapability[], policy: CapabilityPolicy, field: string): CapabilitySet {
  if (capabilities.length === 0)
    throw InvalidArgument("%s is required: give at least one capability (block or mount, and an access mode)", field);
  const checked = capabilities.map((c, i) => requireCapability(c, policy, `${field}[${i}]`));
  const fsTypes = [...new Set(checked.map((c) => c.fsType).filter((t) => t !== ""))];
  if (fsTypes.length > 1) {
    throw InvalidArgument("%s ask for different filesystems (%q): a volume holds one filesystem", field, fsTypes);
  }
  return {
    accessTypes: [...new Set(checked.map((c) => c.accessType))],
    fsType: fsTypes[0] ?? "",
    capabilities: checked,
  };
}
