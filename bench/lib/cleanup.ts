import { execFile, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { loopDevicesUnder, mountsUnder } from "../../test/support/host-leaks.js";

const execFileAsync = promisify(execFile);

/**
 * Everything a benchmark run creates lives under one root directory (sockets,
 * data dirs, image files, mount points), and every process it starts is
 * registered here, so a sweep can remove all of it — processes, mounts, loop
 * devices and files — after success, failure or Ctrl-C.
 */
const children = new Set<ChildProcess>();
let root: string | undefined;
const extraDirs = new Set<string>();

/** Another directory to remove with the root (e.g. the snapshot of dist/). */
export function removeWithRoot(dir: string): void {
  extraDirs.add(dir);
}

export async function makeBenchRoot(): Promise<string> {
  root = await mkdtemp(join(tmpdir(), "do-csi-bench-"));
  return root;
}

export function benchRoot(): string {
  if (root === undefined) throw new Error("makeBenchRoot() first");
  return root;
}

/** Track a child process so it is killed if the run ends early. */
export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

/** SIGKILL every tracked child that is still running (synchronous: usable in an 'exit' handler). */
export function killChildren(): void {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  children.clear();
}

async function tryRun(command: string, args: readonly string[]): Promise<boolean> {
  try {
    await execFileAsync(command, [...args]);
    return true;
  } catch {
    return false;
  }
}

export interface SweepReport {
  readonly unmounted: string[];
  readonly detached: string[];
}

/** Unmount everything under `dir` (deepest first, lazily if need be) and detach loop devices whose files lie there. */
export async function sweepHost(dir: string): Promise<SweepReport> {
  const unmounted: string[] = [];
  const detached: string[] = [];
  for (let pass = 0; pass < 5; pass++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) break;
    for (const point of points) {
      if ((await tryRun("umount", [point])) || (await tryRun("umount", ["-l", point]))) unmounted.push(point);
    }
  }
  for (const { device } of await loopDevicesUnder(dir)) {
    if (await tryRun("losetup", ["-d", device])) detached.push(device);
  }
  return { unmounted, detached };
}

/** Remove the run's root after sweeping it; reports what had been left behind. */
export async function removeBenchRoot(): Promise<SweepReport | undefined> {
  if (root === undefined) return undefined;
  const dir = root;
  killChildren();
  const report = await sweepHost(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  for (const extra of extraDirs) await rm(extra, { recursive: true, force: true, maxRetries: 3 });
  extraDirs.clear();
  root = undefined;
  return report;
}

/** What remains under `dir`: mounts and loop devices (for the leak check at the end of a run). */
export async function leftovers(dir: string): Promise<{ mounts: string[]; loops: string[] }> {
  return { mounts: await mountsUnder(dir), loops: (await loopDevicesUnder(dir)).map((l) => l.device) };
}

let interrupted = false;

/** True once a signal asked the run to stop (errors after that are the cleanup's doing). */
export function wasInterrupted(): boolean {
  return interrupted;
}

/** On Ctrl-C or SIGTERM: kill children, sweep the root, exit. On any exit: kill children. */
export function installExitHandlers(): void {
  process.on("exit", killChildren);
  const onSignal = (signal: NodeJS.Signals) => {
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}: cleaning up\n`);
    void removeBenchRoot().finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
}
