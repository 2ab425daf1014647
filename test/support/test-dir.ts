import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";

/** The run's root directory for files, sockets, devices and mounts (see global-setup). */
export function testRoot(): string {
  try {
    return inject("testRoot");
  } catch {
    return process.env.CSI_TEST_ROOT ?? join(tmpdir(), "do-csi-tests");
  }
}

/** A fresh directory under the test root; remove it with `removeTestDir`. */
export async function makeTestDir(prefix: string): Promise<string> {
  const { mkdir } = await import("node:fs/promises");
  await mkdir(testRoot(), { recursive: true });
  return mkdtemp(join(testRoot(), `${prefix}-`));
}

export async function removeTestDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}
