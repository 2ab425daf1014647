import { spawn, type ChildProcess } from "node:child_process";
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/**
 * Mount a FUSE filesystem at `path` whose daemon is already gone: the shell
 * that opened /dev/fuse exits right after mounting, so the connection is
 * aborted and every stat of `path` fails with ENOTCONN ("Transport endpoint
 * is not connected"), like a crashed sshfs or a killed CSI FUSE driver.
 */
export async function mountDeadFuse(path: string): Promise<void> {
  const script = 'exec 3<>/dev/fuse && exec mount -i -t fuse -o fd=3,rootmode=40000,user_id=0,group_id=0 dead-fuse "$1"';
  await execFileAsync("bash", ["-c", script, "mount-dead-fuse", path], {
    env: { ...process.env, PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
  });
}

/** A process whose working directory is inside `path`, which keeps a mount there busy until it is killed. */
export function occupy(path: string): ChildProcess {
  const child = spawn("sleep", ["600"], { cwd: path, stdio: "ignore" });
  child.unref();
  return child;
}

/** Kill an occupying process and wait for it to exit (so a lazily detached filesystem is released). */
export async function release(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.kill("SIGKILL");
  });
}
