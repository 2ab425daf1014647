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
