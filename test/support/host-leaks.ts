import { execFile } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Mount points at or below `root`, from /proc/self/mountinfo (deepest first). */
export async function mountsUnder(root: string): Promise<string[]> {
  const text = await readFile("/proc/self/mountinfo", "utf8");
  const points: string[] = [];
  for (const line of text.split("\n")) {
    const mountPoint = line.split(" ")[4];
    if (mountPoint === undefined) continue;
    const decoded = mountPoint.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
    if (decoded === root || decoded.startsWith(`${root}/`)) points.push(decoded);
  }
  return points.sort((a, b) => b.length - a.length);
}

/** Loop devices whose backing file lies at or below `root`, from sysfs. */
export async function loopDevicesUnder(root: string): Promise<{ device: string; file: string }[]> {
  const found: { device: string; file: string }[] = [];
  let entries: string[];
  try {
    entries = await readdir("/sys/block");
  } catch {
    return found;
  }
  for (const name of entries.filter((n) => n.startsWith("loop"))) {
    let file: string;
    try {
      file = (await readFile(`/sys/block/${name}/loop/backing_file`, "utf8")).trim().replace(/ \(deleted\)$/, "");
    } catch {
      continue; // not attached
    }
    if (file === root || file.startsWith(`${root}/`)) found.push({ device: `/dev/${name}`, file });
  }
  return found;
}

/** What is still mounted or attached at or below `root`, one line each; empty when nothing is. */
export async function hostLeaks(root: string): Promise<string[]> {
  return [
    ...(await mountsUnder(root)).map((point) => `mount ${point}`),
    ...(await loopDevicesUnder(root)).map(({ device, file }) => `loop device ${device} -> ${file}`),
  ];
}

/** Unmount everything at or below `root` (deepest first) and detach every loop device backed by a file below it; best effort. */
export async function cleanHost(root: string): Promise<void> {
  for (const point of await mountsUnder(root)) {
    // A filesystem left frozen (a test that failed mid-snapshot) must be thawed first: lazily unmounted while
    // frozen, it could never be reached again, and its loop device would stay busy until a reboot.
    await execFileAsync("fsfreeze", ["--unfreeze", point]).catch(() => undefined);
    await execFileAsync("umount", ["-l", point]).catch(() => undefined);
  }
  for (const { device } of await loopDevicesUnder(root)) await execFileAsync("losetup", ["-d", device]).catch(() => undefined);
}
