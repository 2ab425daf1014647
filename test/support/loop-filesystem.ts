import { execFile } from "node:child_process";
import { mkdir, open, rm, rmdir } from "node:fs/promises";
import { promisify } from "node:util";
import { loopDevicesUnder } from "./host-leaks.js";

const exec = promisify(execFile);

/**
 * A small ext4 filesystem of its own on a sparse image and a loop device,
 * mounted at a directory: a disk of a known size (for a pool whose capacity
 * comes from its data dir's filesystem). No blocks are reserved for root, so
 * the whole filesystem is free space.
 */
export class LoopFilesystem {
  private constructor(
    readonly image: string,
    readonly mountPoint: string,
  ) {}

  static async create(image: string, mountPoint: string, bytes: bigint): Promise<LoopFilesystem> {
    const file = await open(image, "w");
    try {
      await file.truncate(Number(bytes));
    } finally {
      await file.close();
    }
    await exec("mkfs.ext4", ["-q", "-F", "-m", "0", "-E", "lazy_itable_init=0,lazy_journal_init=0", image]);
    await mkdir(mountPoint, { recursive: true });
    const fs = new LoopFilesystem(image, mountPoint);
    try {
      await exec("mount", ["-o", "loop", image, mountPoint]);
    } catch (err) {
      await fs.remove();
      throw err;
    }
    return fs;
  }

  /** The loop device mount(8) attached for the image, if it is still attached. */
  async device(): Promise<string | undefined> {
    return (await loopDevicesUnder(this.image)).find((d) => d.file === this.image)?.device;
  }

  /** Unmount, detach the loop device (mount -o loop sets autoclear; detach anyway if it lingers), delete the image. */
  async remove(): Promise<void> {
    await exec("umount", [this.mountPoint]).catch((err: { stderr?: string }) => {
      if (!/not mounted|no mount point/i.test(err.stderr ?? "")) throw err;
    });
    const device = await this.device();
    if (device !== undefined) await exec("losetup", ["-d", device]);
    await rmdir(this.mountPoint).catch(() => undefined);
    await rm(this.image, { force: true });
  }
}
