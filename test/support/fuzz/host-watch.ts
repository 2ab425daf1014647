import { readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";

/**
 * What a fuzz run must not change outside the directory it hands the driver
 * (`root`): the entries beside it (its parent is the run's own directory, so
 * any change there counts), the names in the test root, the temporary
 * directory and the working directory, and the mount table. Other test runs share the test root, the
 * temporary and the working directory, so there only new names carrying the run's marker
 * (every name the fuzzer generates has it) count, and only new mounts that
 * carry it, lie beside `root` or lie outside the temporary directory.
 */
export interface HostSnapshot {
  readonly listings: ReadonlyMap<string, readonly string[]>;
  readonly mounts: ReadonlySet<string>;
}

async function names(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch {
    return [];
  }
}

function decodeMountPoint(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

async function mountPoints(): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  return text
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((field): field is string => field !== undefined)
    .map(decodeMountPoint);
}

/**
 * The directories watched for a run rooted at `root`: its parent, grandparent,
 * the temporary directory, and the working directory (where a relative path
 * would land; the driver runs in the test's).
 */
export function watchedDirs(root: string): string[] {
  return [...new Set([dirname(root), dirname(dirname(root)), tmpdir(), process.cwd()])];
}

export async function snapshotHost(root: string): Promise<HostSnapshot> {
  const listings = new Map<string, string[]>();
  for (const dir of watchedDirs(root)) listings.set(dir, await names(dir));
  return { listings, mounts: new Set(await mountPoints()) };
}

/** What changed outside `root` since `before`, as readable lines (empty when nothing did). */
export async function changesOutside(root: string, before: HostSnapshot, marker: string): Promise<string[]> {
  const changes: string[] = [];
  for (const [dir, was] of before.listings) {
    const own = dir === dirname(root);
    const now = await names(dir);
    if (own) for (const name of was) if (!now.includes(name)) changes.push(`removed: ${join(dir, name)}`);
    for (const name of now) if (!was.includes(name) && (own || name.includes(marker))) changes.push(`created: ${join(dir, name)}`);
  }
  const beside = `${dirname(root)}/`;
  for (const point of await mountPoints()) {
    if (before.mounts.has(point) || point === root || point.startsWith(`${root}/`)) continue;
    if (point.includes(marker) || point.startsWith(beside) || !point.startsWith(`${tmpdir()}/`)) changes.push(`mounted: ${point}`);
  }
  return changes;
}
