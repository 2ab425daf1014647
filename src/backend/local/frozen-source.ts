import { constants } from "node:fs";
import { open } from "node:fs/promises";
import type { Logger } from "../../log/logger.js";
import { loopDevicesFor } from "../../mounter/loop.js";
import { mountsOfSource, readMountInfo } from "../../mounter/mountinfo.js";
import { run } from "../../util/exec.js";
import type { FrozenMount } from "./state.js";

const FREEZE_TIMEOUT_MS = 60_000;

/** Where the image is in use on this node: filesystems to freeze, and raw loop devices to flush. */
export async function usesOf(image: string): Promise<{ mounts: FrozenMount[]; rawDevices: string[] }> {
  const devices = await loopDevicesFor(image);
  if (devices.length === 0) return { mounts: [], rawDevices: [] };
  const entries = await readMountInfo();
  const mounts: FrozenMount[] = [];
  const rawDevices: string[] = [];
  for (const device of devices) {
    // Every mount of a device shares one superblock: freezing through one of them freezes it.
    const [first] = mountsOfSource(entries, device);
    if (!first) rawDevices.push(device);
    else if (!first.superOptions.includes("ro")) mounts.push({ mountPoint: first.mountPoint, device });
  }
  return { mounts, rawDevices };
}

/** Push writes cached above a raw loop device down into its backing file. */
async function flushDevice(device: string): Promise<void> {
  const handle = await open(device, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function thaw(mount: FrozenMount, log: Logger): Promise<boolean> {
  try {
    await run("fsfreeze", ["--unfreeze", mount.mountPoint], { timeoutMs: FREEZE_TIMEOUT_MS });
    return true;
  } catch (err) {
    log.error(
      { mountPoint: mount.mountPoint, device: mount.device, err: (err as Error).message },
      "could not thaw a filesystem frozen for a snapshot",
    );
    return false;
  }
}

/**
 * Run `copy` while the image cannot change underneath it: when the image's
 * loop device is mounted on this node, its filesystem is frozen (fsfreeze),
 * which also flushes it, and always thawed afterwards, whether the copy worked
 * or not; a loop device used raw is flushed first. `recordFrozen` learns what
 * is about to be frozen before it is, so a restart after a crash can thaw it.
 * Mounts in other mount namespaces are not seen, and their data is copied as
 * it is on disk (crash-consistent).
 */
export async function withFrozenSource<T>(
  image: string,
  log: Logger,
  recordFrozen: (mounts: readonly FrozenMount[]) => Promise<void>,
  copy: () => Promise<T>,
): Promise<T> {
  return withFrozenImages([image], log, ([mounts]) => recordFrozen(mounts ?? []), copy);
}

/**
 * The same for several images at once, frozen together: every filesystem is
 * frozen before `work` starts and thawed after it ends, so what `work` copies
 * is one moment of all of them (write-order consistent across the set).
 * `recordFrozen` gets, per image, what is about to be frozen.
 */
export async function withFrozenImages<T>(
  images: readonly string[],
  log: Logger,
  recordFrozen: (mountsPerImage: readonly (readonly FrozenMount[])[]) => Promise<void>,
  work: () => Promise<T>,
): Promise<T> {
  const uses = [];
  for (const image of images) uses.push(await usesOf(image));
  for (const { rawDevices } of uses) for (const device of rawDevices) await flushDevice(device);
  const mounts = uses.map((u) => u.mounts);
  if (mounts.some((m) => m.length > 0)) await recordFrozen(mounts);
  const frozen: FrozenMount[] = [];
  try {
    for (const mount of mounts.flat()) {
      await run("fsfreeze", ["--freeze", mount.mountPoint], { timeoutMs: FREEZE_TIMEOUT_MS });
      frozen.push(mount);
    }
    if (frozen.length > 0) log.info({ mounts: frozen.map((m) => m.mountPoint) }, "froze the source filesystems for a consistent copy");
    return await work();
  } finally {
    for (const mount of frozen.reverse()) await thaw(mount, log);
  }
}

/**
 * After a crash: thaw a filesystem a dead process froze, if it is still the
 * one it froze (the same loop device, still backed by `image`, still mounted
 * there). An unfrozen filesystem makes fsfreeze fail, which is fine.
 */
export async function thawAfterCrash(mount: FrozenMount, image: string, log: Logger): Promise<void> {
  const devices = await loopDevicesFor(image);
  if (!devices.includes(mount.device)) return;
  const entries = await readMountInfo();
  if (!mountsOfSource(entries, mount.device).some((e) => e.mountPoint === mount.mountPoint)) return;
  try {
    await run("fsfreeze", ["--unfreeze", mount.mountPoint], { timeoutMs: FREEZE_TIMEOUT_MS });
    log.warn({ mountPoint: mount.mountPoint }, "thawed a filesystem left frozen by an interrupted snapshot");
  } catch {
    // not frozen
  }
}
