import { CommandError, run } from "../util/exec.js";
import { mountAt, mountsAt, readMountInfo } from "./mountinfo.js";

export interface MountOptions {
  readonly signal?: AbortSignal;
}

/** Mount a filesystem of type `fsType` from a block device. */
export async function mountFilesystem(
  device: string,
  target: string,
  fsType: string,
  options: readonly string[],
  opts: MountOptions = {},
): Promise<void> {
  const args = ["-t", fsType];
  if (options.length > 0) args.push("-o", options.join(","));
  args.push("--", device, target);
  await run("mount", args, { signal: opts.signal, timeoutMs: 120_000 });
}

/** Per-mount flags a bind mount inherits from its source and keeps only if a bind remount repeats them. */
const INHERITED_FLAGS = new Set(["nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime", "nosymfollow"]);
const ATIME_FLAGS = new Set(["atime", "noatime", "relatime", "norelatime", "strictatime", "nostrictatime"]);

/**
 * Bind `source` (a directory, or a device node) onto `target`, then apply the
 * per-mount `flags` (ro, nosuid, ...) with a bind remount, because a bind mount
 * ignores them when it is created. The remount repeats the flags the new mount
 * inherited, since a bind remount resets the ones it does not name. If it
 * fails the bind is undone, so a read-only request never leaves a writable
 * mount behind.
 */
export async function bindMount(source: string, target: string, flags: readonly string[], opts: MountOptions = {}): Promise<void> {
  await run("mount", ["--bind", "--", source, target], { signal: opts.signal, timeoutMs: 60_000 });
  const wanted = flags.filter((f) => f !== "rw");
  if (wanted.length === 0) return;
  try {
    const entry = mountAt(await readMountInfo(), target);
    const atimeWanted = wanted.some((f) => ATIME_FLAGS.has(f));
    const inherited = (entry?.options ?? []).filter((o) => INHERITED_FLAGS.has(o) && !(atimeWanted && ATIME_FLAGS.has(o)));
    await remountBind(target, [...new Set([...inherited, ...wanted])], opts);
  } catch (err) {
    await unmount(target).catch(() => undefined);
    throw err;
  }
}

/** Change the per-mount flags of an existing mount (e.g. make a bind mount read-only). */
export async function remountBind(target: string, flags: readonly string[], opts: MountOptions = {}): Promise<void> {
  await run("mount", ["-o", ["remount", "bind", ...flags].join(","), "--", target], { signal: opts.signal, timeoutMs: 60_000 });
}

export interface UnmountResult {
  /** How many mounts were removed from the path. */
  readonly unmounted: number;
  /** True when at least one needed a lazy unmount (busy, stale or hung). */
  readonly lazy: boolean;
}

/** How long a regular unmount may take before it is abandoned for a lazy one. */
const UNMOUNT_TIMEOUT_MS = 30_000;
/** Bound on stacked mounts removed from one path (a loop, not recursion, and never endless). */
const MAX_STACKED_MOUNTS = 16;

/**
 * Remove every mount stacked at `path` (a canonical path). A regular unmount is
 * tried first; when it fails (busy, the filesystem is broken) or hangs, the
 * mount is detached lazily (`umount -l`), so a stuck mount never wedges the
 * volume. Succeeds when nothing is mounted there.
 */
export async function unmountAll(path: string, opts: MountOptions = {}): Promise<UnmountResult> {
  let unmounted = 0;
  let lazy = false;
  for (let i = 0; i < MAX_STACKED_MOUNTS; i++) {
    opts.signal?.throwIfAborted();
    if (mountsAt(await readMountInfo(), path).length === 0) return { unmounted, lazy };
    lazy = (await unmountTop(path, opts)).lazy || lazy;
    unmounted++;
  }
  if (mountsAt(await readMountInfo(), path).length === 0) return { unmounted, lazy };
  throw new Error(`${path} still has mounts after ${MAX_STACKED_MOUNTS} unmounts`);
}

/** Remove the topmost mount at `path`: a regular unmount, or a lazy one when that fails or hangs. */
export async function unmountTop(path: string, opts: MountOptions = {}): Promise<{ lazy: boolean }> {
  const regular = await unmount(path, opts).then(
    () => true,
    () => false,
  );
  if (regular) return { lazy: false };
  await run("umount", ["--lazy", "--", path], { signal: opts.signal, timeoutMs: UNMOUNT_TIMEOUT_MS, okExitCodes: [32] });
  return { lazy: true };
}

/** One regular unmount of the topmost mount at `path`. */
export async function unmount(path: string, opts: MountOptions = {}): Promise<void> {
  try {
    await run("umount", ["--", path], { signal: opts.signal, timeoutMs: UNMOUNT_TIMEOUT_MS });
  } catch (err) {
    if (err instanceof CommandError && /not mounted/.test(err.stderr)) return;
    throw err;
  }
}
