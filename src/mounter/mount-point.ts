import { devicePathOf, type DeviceNumber } from "./device.js";
import { mountAt, readMountInfo, type MountEntry } from "./mountinfo.js";
import { inspectPath } from "./paths.js";

/**
 * What a path holds, from mountinfo and one lstat: nothing, a plain directory
 * or file, a mounted filesystem, a bind-mounted block device node, or a mount
 * that is broken (stat fails with ENOTCONN, EIO, ...).
 */
export type MountPointState =
  | { readonly kind: "missing" }
  | { readonly kind: "corrupt"; readonly mounted: boolean; readonly code: string; readonly message: string }
  | { readonly kind: "directory" }
  | { readonly kind: "file"; readonly size: number }
  | { readonly kind: "other" }
  | MountedFilesystem
  | MountedBlockDevice;

export interface MountedFilesystem {
  readonly kind: "filesystem";
  /** The topmost mount at the path. */
  readonly entry: MountEntry;
  readonly device: DeviceNumber;
  /** /dev path of the filesystem's block device; undefined for filesystems without one (tmpfs, fuse, ...). */
  readonly devicePath: string | undefined;
}

export interface MountedBlockDevice {
  readonly kind: "block";
  readonly entry: MountEntry;
  /** The device the node at the path refers to (not the devtmpfs it came from). */
  readonly device: DeviceNumber;
  readonly devicePath: string | undefined;
}

/** Inspect a canonical path (see canonicalPath); `entries` may be passed to reuse one mountinfo read. */
export async function inspectMountPoint(path: string, entries?: readonly MountEntry[]): Promise<MountPointState> {
  const table = entries ?? (await readMountInfo());
  const top = mountAt(table, path);
  const st = await inspectPath(path);
  switch (st.kind) {
    case "corrupt":
      return { kind: "corrupt", mounted: top !== undefined, code: st.code, message: st.message };
    case "missing":
      return st;
    case "block-device":
      if (top === undefined) return { kind: "other" };
      return { kind: "block", entry: top, device: st.rdev, devicePath: await devicePathOf(st.rdev) };
    default:
      if (top === undefined) return st;
      return { kind: "filesystem", entry: top, device: top.device, devicePath: await devicePathOf(top.device) };
  }
}

/**
 * What backs a mount: a block device that exists, one that no longer does (a
 * volume detached while still mounted), or none at all (tmpfs, proc, FUSE,
 * overlay, ...). A device node bound from devtmpfs is backed by that device.
 */
export type MountBacking =
  | { readonly kind: "device"; readonly device: DeviceNumber }
  | { readonly kind: "vanished" }
  | { readonly kind: "none" };

export async function mountBacking(entry: MountEntry): Promise<MountBacking> {
  if (entry.fsType === "devtmpfs") {
    if (entry.root === "/") return { kind: "none" };
    const node = await inspectPath(`/dev${entry.root}`);
    if (node.kind === "block-device") return { kind: "device", device: node.rdev };
    return node.kind === "missing" ? { kind: "vanished" } : { kind: "none" };
  }
  if ((await devicePathOf(entry.device)) !== undefined) return { kind: "device", device: entry.device };
  return entry.source.startsWith("/dev/") ? { kind: "vanished" } : { kind: "none" };
}
