import { execFile } from "node:child_process";
import { lstat, readFile, stat } from "node:fs/promises";
import { promisify } from "node:util";

/**
 * What the suite looks at on the node itself: the mount table, block device
 * sizes, files. It runs on the node the Node service serves, as csi-sanity does.
 */

export interface MountEntry {
  readonly mountPoint: string;
  readonly root: string;
  readonly options: readonly string[];
  readonly fsType: string;
  readonly source: string;
  /** major:minor of the mounted device. */
  readonly device: string;
}

function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export async function readMounts(): Promise<MountEntry[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [left, right] = line.split(" - ");
    if (left === undefined || right === undefined) continue;
    const fields = left.split(" ");
    const tail = right.split(" ");
    entries.push({
      device: fields[2] ?? "",
      root: unescapeOctal(fields[3] ?? ""),
      mountPoint: unescapeOctal(fields[4] ?? ""),
      options: (fields[5] ?? "").split(","),
      fsType: tail[0] ?? "",
      source: unescapeOctal(tail[1] ?? ""),
    });
  }
  return entries;
}

/** The mounts at `path` (the last one is on top). */
export async function mountsAt(path: string): Promise<MountEntry[]> {
  return (await readMounts()).filter((m) => m.mountPoint === path);
}

/** Mount points at or below `dir`, deepest first. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const points = (await readMounts()).map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(`${dir}/`));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

export async function pathKind(path: string): Promise<"missing" | "directory" | "file" | "block-device" | "other"> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) return "directory";
    if (s.isBlockDevice()) return "block-device";
    if (s.isFile()) return "file";
    return "other";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      // A dangling symlink or a stale mount still counts as something left behind.
      try {
        await lstat(path);
        return "other";
      } catch {
        return "missing";
      }
    }
    return "other";
  }
}

/** Size in bytes of the block device at `path`, from sysfs (no ioctl from JavaScript). */
export async function blockDeviceSize(path: string): Promise<bigint> {
  const s = await stat(path);
  if (!s.isBlockDevice()) throw new Error(`${path} is not a block device`);
  // Linux dev_t: major in bits 8-19, minor in bits 0-7 and 20-31.
  const major = Math.floor(s.rdev / 0x100) & 0xfff;
  const minor = (s.rdev & 0xff) | (Math.floor(s.rdev / 0x1000) & 0xfff00);
  const sectors = (await readFile(`/sys/dev/block/${major}:${minor}/size`, "utf8")).trim();
  return BigInt(sectors) * 512n;
}

const exec = promisify(execFile);

/** Lazily unmount `path` (used only for mounts a driver left behind). */
export async function forceUnmount(path: string): Promise<void> {
  await exec("umount", ["-l", path], { timeout: 30_000 });
}
