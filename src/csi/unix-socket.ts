import { connect } from "node:net";
import { lstat, mkdir, unlink } from "node:fs/promises";
import { dirname } from "node:path";

/** Whether some process accepts connections on the socket file. */
export function socketAcceptsConnections(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(path);
    const done = (live: boolean) => {
      socket.destroy();
      resolvePromise(live);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // something holds it but does not answer: treat as owned
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

/**
 * Make `path` ready to listen on: create its directory, remove a stale socket
 * left by a process that died, and refuse when a live process owns the socket
 * or when the path is something other than a socket (never delete user files).
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  let stats;
  try {
    stats = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!stats.isSocket()) {
    throw new Error(`${path} exists and is not a socket; remove it or choose another --endpoint`);
  }
  if (await socketAcceptsConnections(path)) {
    throw new Error(`another process is already serving on ${path}; stop it or choose another --endpoint`);
  }
  await unlink(path);
}

/** Remove the socket file, but only if it is still the one this process created. */
export async function removeOwnSocket(path: string, inode: number | bigint | undefined): Promise<void> {
  try {
    const stats = await lstat(path);
    if (inode === undefined || stats.ino === inode) await unlink(path);
  } catch {
    // already gone
  }
}
