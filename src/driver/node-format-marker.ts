import { open, readFile, rm } from "node:fs/promises";
import { join } from "node:path";

/**
 * A small file in the (not yet mounted) staging directory saying "this
 * plugin is formatting this volume". It is written before mkfs starts and
 * removed once the filesystem is complete, so if the plugin dies half-way
 * (node reboot, OOM kill) the next NodeStageVolume knows that whatever half
 * a filesystem the device holds is its own interrupted work, not user data,
 * and may format it again instead of refusing it for ever.
 */
const MARKER = ".do-csi-plugin-formatting";

export async function markFormatting(stagingPath: string, volumeId: string): Promise<void> {
  const handle = await open(join(stagingPath, MARKER), "w", 0o600);
  try {
    await handle.writeFile(`${volumeId}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** True when a format of this volume was started at this staging path and never finished. */
export async function formatWasInterrupted(stagingPath: string, volumeId: string): Promise<boolean> {
  try {
    return (await readFile(join(stagingPath, MARKER), "utf8")).trim() === volumeId;
  } catch {
    return false;
  }
}

export async function clearFormatting(stagingPath: string): Promise<void> {
  await rm(join(stagingPath, MARKER), { force: true });
}
