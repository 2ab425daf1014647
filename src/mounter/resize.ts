import { run } from "../util/exec.js";

/** Filesystems this driver can grow while mounted. */
export function canGrowOnline(fsType: string): boolean {
  return fsType === "ext4" || fsType === "ext3" || fsType === "ext2" || fsType === "xfs";
}

/** Thrown when asked to size or grow a filesystem type the driver does not handle. */
export class UnsupportedFilesystemError extends Error {
  constructor(readonly fsType: string) {
    super(`growing a ${fsType} filesystem is not supported (supported: ext2, ext3, ext4, xfs)`);
    this.name = "UnsupportedFilesystemError";
  }
}

/** Parse `dumpe2fs -h`: block count times block size. */
export function parseDumpe2fsSize(text: string): number {
  const count = /^Block count:\s+(\d+)/m.exec(text);
  const size = /^Block size:\s+(\d+)/m.exec(text);
  if (!count?.[1] || !size?.[1]) throw new Error(`unexpected dumpe2fs output: ${text.slice(0, 200)}`);
  return Number(count[1]) * Number(size[1]);
}

/** Parse `xfs_info`: the data section's block size times its block count. */
export function parseXfsInfoSize(text: string): number {
  const match = /^data\s+=\s+bsize=(\d+)\s+blocks=(\d+)/m.exec(text);
  if (!match?.[1] || !match[2]) throw new Error(`unexpected xfs_info output: ${text.slice(0, 200)}`);
  return Number(match[1]) * Number(match[2]);
}

/**
 * Size in bytes of the filesystem on `device` (what it spans, not what statfs
 * reports as usable). xfs is asked through its mount point when mounted.
 */
export async function filesystemSize(
  device: string,
  fsType: string,
  mountPoint: string | undefined,
  signal?: AbortSignal,
): Promise<number> {
  if (fsType.startsWith("ext")) {
    const { stdout } = await run("dumpe2fs", ["-h", "--", device], { signal, timeoutMs: 60_000 });
    return parseDumpe2fsSize(stdout);
  }
  if (fsType === "xfs") {
    const { stdout } = await run("xfs_info", ["--", mountPoint ?? device], { signal, timeoutMs: 60_000 });
    return parseXfsInfoSize(stdout);
  }
  throw new UnsupportedFilesystemError(fsType);
}

/**
 * Grow a mounted filesystem to fill its device. ext* is grown through the
 * device (resize2fs finds the mount itself); xfs through a read-write mount
 * point of it. Like every command that rewrites filesystem metadata, it takes
 * no AbortSignal: killing it half-way when a caller's deadline expires could
 * leave the filesystem damaged, so it runs to the end (bounded by its own
 * timeout) and a retried call finds the work done.
 */
export async function growFilesystem(device: string, fsType: string, mountPoint: string): Promise<void> {
  if (fsType.startsWith("ext") && canGrowOnline(fsType)) {
    await run("resize2fs", ["--", device], { timeoutMs: 30 * 60_000 });
    return;
  }
  if (fsType === "xfs") {
    await run("xfs_growfs", ["-d", "--", mountPoint], { timeoutMs: 30 * 60_000 });
    return;
  }
  throw new UnsupportedFilesystemError(fsType);
}

/**
 * Grow an unmounted ext2/3/4 filesystem to fill its device. resize2fs only
 * resizes a filesystem offline after a forced check, so e2fsck runs first in
 * preen mode (automatic safe fixes only; it refuses a mounted device).
 * Offline growth needs no CAP_SYS_RESOURCE, unlike the online resize ioctl.
 */
export async function growUnmountedExtFilesystem(device: string): Promise<void> {
  // e2fsck exit 1/2: errors were corrected. Not cancellable, see growFilesystem.
  await run("e2fsck", ["-f", "-p", "--", device], { timeoutMs: 30 * 60_000, okExitCodes: [1, 2] });
  await run("resize2fs", ["--", device], { timeoutMs: 30 * 60_000 });
}
