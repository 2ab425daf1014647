import { lstat, realpath } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { formatDeviceNumber, type DeviceNumber } from "./device.js";

/**
 * Errors that stat reports on a mount point whose filesystem is broken: a FUSE
 * daemon that died (ENOTCONN), a device that vanished (EIO), a stale network
 * handle (ESTALE). Such a mount can only be lazily unmounted.
 */
const CORRUPT_MOUNT_ERRORS = new Set(["ENOTCONN", "EIO", "ESTALE", "EHOSTDOWN", "EACCES", "ECONNABORTED"]);

export type PathKind =
  | { readonly kind: "missing" }
  | { readonly kind: "directory" }
  | { readonly kind: "file"; readonly size: number }
  | { readonly kind: "block-device"; readonly rdev: DeviceNumber }
  | { readonly kind: "other" }
  | { readonly kind: "corrupt"; readonly code: string; readonly message: string };

function errnoCode(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** What is at `path` (not following a final symlink), telling a broken mount apart from other failures. */
export async function inspectPath(path: string): Promise<PathKind> {
  try {
    const st = await lstat(path, { bigint: true });
    if (st.isDirectory()) return { kind: "directory" };
    if (st.isFile()) return { kind: "file", size: Number(st.size) };
    if (st.isBlockDevice()) return { kind: "block-device", rdev: formatDeviceNumber(st.rdev) };
    return { kind: "other" };
  } catch (err) {
    const code = errnoCode(err);
    if (code === "ENOENT") return { kind: "missing" };
    if (code !== undefined && CORRUPT_MOUNT_ERRORS.has(code)) {
      return { kind: "corrupt", code, message: err instanceof Error ? err.message : String(err) };
    }
    throw err;
  }
}

/**
 * The path as the kernel names it in mountinfo: its parent directory with
 * symlinks resolved, plus its last component. The last component itself is
 * not resolved, because it may be a broken mount that hangs or fails on stat.
 */
export async function canonicalPath(path: string): Promise<string> {
  if (path === "/") return path;
  try {
    return join(await realpath(dirname(path)), basename(path));
  } catch {
    return path;
  }
}
