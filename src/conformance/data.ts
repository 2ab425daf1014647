import { randomBytes } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import { join } from "node:path";

/**
 * Reading and writing volume contents through published paths, to prove that
 * a mount or a block device really is the volume (and keeps its data).
 */

export const MARKER_FILE = "csi-conformance-marker";

/** Write a marker file with random content into a mounted volume and flush it to the device. */
export async function writeMarker(mountPath: string): Promise<string> {
  const content = `csi-conformance ${randomBytes(16).toString("hex")}\n`;
  const handle = await open(join(mountPath, MARKER_FILE), "w");
  try {
    await handle.writeFile(content);
    await handle.sync();
  } finally {
    await handle.close();
  }
  const dir = await open(mountPath, "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
  return content;
}

export async function readMarker(mountPath: string): Promise<string | undefined> {
  try {
    return await readFile(join(mountPath, MARKER_FILE), "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

export const BLOCK_PATTERN_BYTES = 4096;

/** Write a random 4 KiB pattern at `offset` of a block device and flush it. */
export async function writeBlockPattern(devicePath: string, offset = 0): Promise<Buffer> {
  const pattern = randomBytes(BLOCK_PATTERN_BYTES);
  const handle = await open(devicePath, "r+");
  try {
    await handle.write(pattern, 0, pattern.length, offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return pattern;
}

export async function readBlock(devicePath: string, offset = 0, length = BLOCK_PATTERN_BYTES): Promise<Buffer> {
  const handle = await open(devicePath, "r");
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** The errno code of a failed write attempt, or undefined when the write succeeded. */
export async function writeErrorCode(path: string): Promise<string | undefined> {
  try {
    const handle = await open(path, "w");
    try {
      await handle.writeFile("should not be writable\n");
      await handle.sync();
    } finally {
      await handle.close();
    }
    return undefined;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? "error";
  }
}
