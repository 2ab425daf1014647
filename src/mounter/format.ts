import { run } from "../util/exec.js";
import { type ProgressOptions, withProgress } from "../util/progress.js";

/** Filesystems the driver creates on a blank volume. */
export const FORMATTABLE_FILESYSTEMS = ["ext4", "ext3", "xfs"] as const;
export type FormattableFilesystem = (typeof FORMATTABLE_FILESYSTEMS)[number];

export const DEFAULT_FILESYSTEM: FormattableFilesystem = "ext4";

/** xfsprogs >= 5.19 refuses to create a filesystem smaller than 300 MiB. */
export const XFS_MIN_BYTES = 300 * 1024 * 1024;

export function isFormattable(fsType: string): fsType is FormattableFilesystem {
  return (FORMATTABLE_FILESYSTEMS as readonly string[]).includes(fsType);
}

/** The mkfs command line for a filesystem type; exported for tests and docs. */
export function mkfsCommand(
  fsType: FormattableFilesystem,
  device: string,
  options: { overwriteInterrupted?: boolean } = {},
): { command: string; args: string[] } {
  switch (fsType) {
    case "ext4":
    case "ext3":
      // -F: the caller has verified the device is blank (mke2fs would otherwise ask
      // about a whole-disk device); -m 0: no blocks reserved for root on a data
      // volume; lazy init: inode tables and journal are zeroed in the background.
      return { command: `mkfs.${fsType}`, args: ["-F", "-q", "-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1", "--", device] };
    case "xfs":
      // No -f: mkfs.xfs then refuses a device with any signature, a second safety
      // net; except to redo this plugin's own interrupted format (see format marker).
      return { command: "mkfs.xfs", args: ["-q", ...(options.overwriteInterrupted ? ["-f"] : []), "--", device] };
  }
}

/**
 * Create a filesystem. Only call this on a device that probeDevice reported
 * blank. It takes no AbortSignal on purpose: an mkfs killed half-way (say, when
 * the caller's deadline expires) leaves a device holding neither zeros nor a
 * filesystem, which is then never formatted again; so it runs to the end,
 * bounded by its own timeout, and a retried call finds the filesystem made.
 * With `progress`, a long mkfs logs that it is still running.
 */
export async function makeFilesystem(
  device: string,
  fsType: FormattableFilesystem,
  options: { overwriteInterrupted?: boolean; progress?: ProgressOptions } = {},
): Promise<void> {
  const { command, args } = mkfsCommand(fsType, device, options);
  await withProgress(`${command} on ${device}`, options.progress, () => run(command, args, { timeoutMs: 10 * 60_000 }));
}
