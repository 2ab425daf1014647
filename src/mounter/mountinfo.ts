import { readFile } from "node:fs/promises";

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  readonly id: number;
  readonly parentId: number;
  /** "major:minor" of the filesystem's device. */
  readonly device: string;
  /** Path inside the filesystem that is mounted here ("/" unless a bind of a subdirectory). */
  readonly root: string;
  readonly mountPoint: string;
  /** Per-mount options (ro, rw, nosuid, ...). */
  readonly options: readonly string[];
  /** Propagation fields: "shared:N", "master:N", "propagate_from:N", "unbindable". */
  readonly optionalFields: readonly string[];
  readonly fsType: string;
  /** Mount source, e.g. /dev/loop3. */
  readonly source: string;
  /** Superblock options. */
  readonly superOptions: readonly string[];
}

/** Undo the kernel's octal escaping of space, tab, newline and backslash. */
export function unescapeMountField(value: string): string {
  return value.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const fields = line.split(" ");
    const separator = fields.indexOf("-", 6);
    if (separator === -1 || fields.length < separator + 3) continue;
    entries.push({
      id: Number(fields[0]),
      parentId: Number(fields[1]),
      device: fields[2] ?? "",
      root: unescapeMountField(fields[3] ?? ""),
      mountPoint: unescapeMountField(fields[4] ?? ""),
      options: (fields[5] ?? "").split(","),
      optionalFields: fields.slice(6, separator),
      fsType: fields[separator + 1] ?? "",
      source: unescapeMountField(fields[separator + 2] ?? ""),
      superOptions: (fields[separator + 3] ?? "").split(","),
    });
  }
  return entries;
}

/** The current mount table of this process's mount namespace. */
export async function readMountInfo(file = "/proc/self/mountinfo"): Promise<MountEntry[]> {
  return parseMountInfo(await readFile(file, "utf8"));
}

/** The mount visible at `path` (the last one mounted there), if `path` is a mount point. */
export function mountAt(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const entry of entries) if (entry.mountPoint === path) found = entry;
  return found;
}

/** Every mount whose source is `device` (e.g. all mounts of /dev/loop3). */
export function mountsOfSource(entries: readonly MountEntry[], device: string): MountEntry[] {
  return entries.filter((e) => e.source === device);
}

/** True when `path` is `root` or lies below it (compared component-wise). */
export function isPathWithin(path: string, root: string): boolean {
  if (root === "/") return path.startsWith("/");
  return path === root || path.startsWith(`${root}/`);
}

/**
 * The mount that holds `path`: the topmost mount whose mount point is the
 * longest ancestor of (or equal to) `path`.
 */
export function containingMount(entries: readonly MountEntry[], path: string): MountEntry | undefined {
  let found: MountEntry | undefined;
  for (const entry of entries) {
    if (!isPathWithin(path, entry.mountPoint)) continue;
    if (found === undefined || entry.mountPoint.length >= found.mountPoint.length) found = entry;
  }
  return found;
}

/** Every mount stacked at exactly `path`, bottom first. */
export function mountsAt(entries: readonly MountEntry[], path: string): MountEntry[] {
  return entries.filter((e) => e.mountPoint === path);
}

/**
 * Every mount that uses a block device: filesystems on it (matched by the
 * device number the kernel reports) and bind mounts of its device node from a
 * devtmpfs (whose root is the node's path inside /dev, e.g. "/loop3").
 */
export function mountsOfDevice(entries: readonly MountEntry[], deviceNumber: string, deviceName: string): MountEntry[] {
  const nodeRoot = `/${deviceName.replace(/^\/dev\//, "")}`;
  return entries.filter((e) => e.device === deviceNumber || (e.fsType === "devtmpfs" && e.root === nodeRoot));
}

export type Propagation = "shared" | "slave" | "private";

/** How mount and unmount events propagate from and to a mount (from the optional fields). */
export function propagationOf(entry: MountEntry): Propagation {
  if (entry.optionalFields.some((f) => f.startsWith("shared:"))) return "shared";
  if (entry.optionalFields.some((f) => f.startsWith("master:"))) return "slave";
  return "private";
}

/** Per-mount read-only flag (a bind mount can be read-only on a read-write filesystem). */
export function isReadOnlyMount(entry: MountEntry): boolean {
  return entry.options.includes("ro");
}

/** The filesystem itself (the superblock) is read-only, e.g. after errors=remount-ro. */
export function isReadOnlyFilesystem(entry: MountEntry): boolean {
  return entry.superOptions.includes("ro");
}
