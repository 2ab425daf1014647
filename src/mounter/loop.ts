import { readdir, readFile, realpath } from "node:fs/promises";
import { run } from "../util/exec.js";

export interface LoopDevice {
  /** e.g. /dev/loop3 */
  readonly device: string;
  readonly backingFile: string;
}

/** Attached loop devices and their backing files, read from sysfs (no process spawned). */
export async function listLoopDevices(): Promise<LoopDevice[]> {
  const devices: LoopDevice[] = [];
  let names: string[];
  try {
    names = await readdir("/sys/block");
  } catch {
    return devices;
  }
  await Promise.all(
    names
      .filter((n) => /^loop\d+$/.test(n))
      .map(async (name) => {
        try {
          const file = (await readFile(`/sys/block/${name}/loop/backing_file`, "utf8")).trim();
          devices.push({ device: `/dev/${name}`, backingFile: file });
        } catch {
          // not attached
        }
      }),
  );
  return devices.sort((a, b) => a.device.localeCompare(b.device, "en", { numeric: true }));
}

/** Loop devices currently backed by `file`. */
export async function loopDevicesFor(file: string): Promise<string[]> {
  const target = await realpath(file).catch(() => file);
  return (await listLoopDevices()).filter((d) => d.backingFile === target).map((d) => d.device);
}

const attaching = new Map<string, Promise<string>>();

/**
 * A loop device over `file`: an existing one is reused, otherwise one is
 * attached. Concurrent calls for the same file share one attachment.
 */
export async function attachLoop(file: string, options: { readOnly?: boolean; signal?: AbortSignal } = {}): Promise<string> {
  const target = await realpath(file);
  const pending = attaching.get(target);
  if (pending !== undefined) return pending;
  const attempt = (async () => {
    const [existing] = await loopDevicesFor(target);
    if (existing) return existing;
    const args = ["--find", "--show", ...(options.readOnly ? ["--read-only"] : []), target];
    const { stdout } = await run("losetup", args, { signal: options.signal, timeoutMs: 60_000 });
    return stdout.trim();
  })();
  attaching.set(target, attempt);
  try {
    return await attempt;
  } finally {
    attaching.delete(target);
  }
}

/** Detach a loop device; one that is already gone is fine. */
export async function detachLoop(device: string, signal?: AbortSignal): Promise<void> {
  const name = device.replace(/^\/dev\//, "");
  try {
    await readFile(`/sys/block/${name}/loop/backing_file`, "utf8");
  } catch {
    return; // not attached
  }
  await run("losetup", ["--detach", device], { signal, timeoutMs: 60_000 });
}

/** Make the kernel re-read the size of a loop device's backing file after it grew. */
export async function refreshLoopCapacity(device: string, signal?: AbortSignal): Promise<void> {
  await run("losetup", ["--set-capacity", device], { signal, timeoutMs: 60_000 });
}

/** Size in bytes of a block device, from sysfs (512-byte sectors). */
export async function blockDeviceSize(device: string): Promise<number> {
  const real = await realpath(device);
  const name = real.replace(/^\/dev\//, "");
  const sectors = Number((await readFile(`/sys/class/block/${name}/size`, "utf8")).trim());
  return sectors * 512;
}

/** The backing file of a loop device (sysfs appends " (deleted)" once it was unlinked), or undefined if it is not attached. */
export async function loopBackingFile(device: string): Promise<string | undefined> {
  const name = (await realpath(device).catch(() => device)).replace(/^\/dev\//, "");
  try {
    return (await readFile(`/sys/block/${name}/loop/backing_file`, "utf8")).trim();
  } catch {
    return undefined;
  }
}

/** Loop devices backed by `file`, including ones whose file has since been deleted. */
export async function loopDevicesForIncludingDeleted(file: string): Promise<string[]> {
  const target = await realpath(file).catch(() => file);
  return (await listLoopDevices()).filter((d) => d.backingFile === target || d.backingFile === `${target} (deleted)`).map((d) => d.device);
}
