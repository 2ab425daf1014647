import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { open, rename, stat, unlink } from "node:fs/promises";
import type { Stats } from "node:fs";
import { dirname } from "node:path";

/** File operations whose effects survive a crash or power loss once they resolve. */

/** fsync a file or a directory (a directory's fsync makes renames and unlinks in it durable). */
export async function fsyncPath(path: string): Promise<void> {
  const handle = await open(path, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function statIfExists(path: string): Promise<Stats | undefined> {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Remove a file; one that is already gone is fine. Returns whether it existed. */
export async function removeIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Replace `path` with `text` atomically: temp file, fsync, rename, directory fsync. */
export async function writeFileAtomic(path: string, text: string): Promise<void> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    try {
      await handle.writeFile(text, "utf8");
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (err) {
    await removeIfExists(temp).catch(() => undefined);
    throw err;
  }
  await fsyncPath(dirname(path));
}

/** Create a new sparse file of `sizeBytes` (no blocks allocated); fails if it exists. */
export async function createSparseFile(path: string, sizeBytes: number): Promise<void> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try {
    await handle.truncate(sizeBytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Grow a file to at least `sizeBytes`; the new range is a hole. Never shrinks. */
export async function growFile(path: string, sizeBytes: number): Promise<number> {
  const handle = await open(path, constants.O_RDWR);
  try {
    const { size } = await handle.stat();
    if (size >= sizeBytes) return size;
    await handle.truncate(sizeBytes);
    await handle.sync();
    return sizeBytes;
  } finally {
    await handle.close();
  }
}

/** Bytes actually allocated on disk for a file (0 when it does not exist). */
export async function allocatedBytes(path: string): Promise<number> {
  const stats = await statIfExists(path);
  return stats ? stats.blocks * 512 : 0;
}
