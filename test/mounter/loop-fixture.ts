import { execFile } from "node:child_process";
import { open } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
export const MiB = 1024 * 1024;

/** Run a host command (sbin directories on PATH); resolves with stdout. */
export async function sh(command: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(command, args, {
    env: { ...process.env, LC_ALL: "C", PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
  });
  return stdout;
}

/** A sparse file of `size` bytes in `dir`. */
export async function sparseFile(dir: string, name: string, size: number): Promise<string> {
  const file = join(dir, name);
  const handle = await open(file, "w");
  try {
    await handle.truncate(size);
  } finally {
    await handle.close();
  }
  return file;
}

/** Attach a new loop device over a sparse file in `dir`. */
export async function newLoop(dir: string, name: string, size: number): Promise<{ file: string; device: string }> {
  const file = await sparseFile(dir, name, size);
  const device = (await sh("losetup", "--find", "--show", file)).trim();
  return { file, device };
}

export { cleanHost } from "../support/host-leaks.js";
