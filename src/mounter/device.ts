import { access, readlink, realpath, stat, writeFile } from "node:fs/promises";
import { basename } from "node:path";
import { refreshLoopCapacity } from "./loop.js";

/** A block device number as the kernel prints it in mountinfo and sysfs: "major:minor". */
export type DeviceNumber = string;

/** "major:minor" of a dev_t as returned by stat (glibc's encoding: 12-bit major, 20-bit minor). */
export function formatDeviceNumber(dev: bigint): DeviceNumber {
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}

/** Thrown when a path that should be a block device is something else. */
export class NotABlockDeviceError extends Error {
  constructor(readonly path: string) {
    super(`${path} is not a block device`);
    this.name = "NotABlockDeviceError";
  }
}

/** The device number of a block device node (following symlinks such as /dev/disk/by-id/...). */
export async function blockDeviceNumber(path: string): Promise<DeviceNumber> {
  const st = await stat(path, { bigint: true });
  if (!st.isBlockDevice()) throw new NotABlockDeviceError(path);
  return formatDeviceNumber(st.rdev);
}

/** The /dev path of a block device number, from sysfs; undefined when no such device exists (any more). */
export async function devicePathOf(number: DeviceNumber): Promise<string | undefined> {
  try {
    return `/dev/${basename(await readlink(`/sys/dev/block/${number}`))}`;
  } catch {
    return undefined;
  }
}

/** The kernel name of a block device ("loop3", "sda") from a path to it (symlinks resolved). */
export async function kernelName(device: string): Promise<string> {
  return basename(await realpath(device));
}

export async function isLoopDevice(device: string): Promise<boolean> {
  try {
    await access(`/sys/class/block/${await kernelName(device)}/loop`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Make the kernel re-read a device's size after the volume grew underneath it:
 * a loop device re-reads its backing file (losetup -c); a SCSI disk (a
 * DigitalOcean volume) is rescanned through sysfs. Other devices are left alone.
 */
export async function refreshDeviceSize(device: string, signal?: AbortSignal): Promise<void> {
  if (await isLoopDevice(device)) {
    await refreshLoopCapacity(await realpath(device), signal);
    return;
  }
  const rescan = `/sys/class/block/${await kernelName(device)}/device/rescan`;
  try {
    await access(rescan);
  } catch {
    return;
  }
  await writeFile(rescan, "1");
}
