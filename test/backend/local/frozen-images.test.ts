// @module-tag needs-root
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { usesOf, withFrozenImages } from "../../../src/backend/local/frozen-source.js";
import type { FrozenMount } from "../../../src/backend/local/state.js";
import { silentLogger } from "../../../src/log/logger.js";
import { cleanHost, hostLeaks } from "../../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";

// The freeze of a group of images, on real mounted filesystems: all of them frozen before the work starts,
// every one thawed after it, also when the work fails or is cut short by its deadline.

const exec = promisify(execFile);

let dir: string;
const images: string[] = [];
const mounts: string[] = [];

beforeAll(async () => {
  dir = await makeTestDir("frozen-images");
  for (const name of ["one", "two"]) {
    const image = join(dir, `${name}.img`);
    const mount = join(dir, name);
    await exec("truncate", ["-s", "16M", image]);
    await exec("mkfs.ext4", ["-q", "-F", image]);
    await mkdir(mount);
    await exec("mount", ["-o", "loop", image, mount]);
    images.push(image);
    mounts.push(mount);
  }
});
afterAll(async () => {
  for (const mount of mounts) await exec("fsfreeze", ["--unfreeze", mount]).catch(() => undefined);
  await cleanHost(dir);
  expect(await hostLeaks(dir)).toEqual([]);
  await removeTestDir(dir);
});

/** Frozen: a second freeze fails with EBUSY (a write would block instead of failing). */
async function isFrozen(mount: string): Promise<boolean> {
  try {
    await exec("fsfreeze", ["--freeze", mount]);
  } catch {
    return true;
  }
  await exec("fsfreeze", ["--unfreeze", mount]);
  return false;
}

describe("withFrozenImages", () => {
  it("records, then freezes every mounted image before the work, and thaws all after it", async () => {
    let recorded: readonly (readonly FrozenMount[])[] = [];
    const during = await withFrozenImages(
      images,
      silentLogger,
      async (mountsPerImage) => {
        recorded = mountsPerImage;
        // Recorded before anything is frozen.
        expect(await Promise.all(mounts.map(isFrozen))).toEqual([false, false]);
      },
      async () => Promise.all(mounts.map(isFrozen)),
    );
    expect(during).toEqual([true, true]);
    expect(recorded.map((m) => m.map((x) => x.mountPoint))).toEqual(mounts.map((m) => [m]));
    expect(await Promise.all(mounts.map(isFrozen))).toEqual([false, false]);
    expect((await usesOf(images[0] ?? "")).mounts).toHaveLength(1);
  });

  it("thaws every one when the work fails", async () => {
    await expect(
      withFrozenImages(
        images,
        silentLogger,
        async () => undefined,
        async () => {
          throw new Error("copy failed");
        },
      ),
    ).rejects.toThrow(/copy failed/);
    expect(await Promise.all(mounts.map(isFrozen))).toEqual([false, false]);
  });

  it("thaws every one when the work is cut short by its deadline", async () => {
    const deadline = AbortSignal.timeout(200);
    await expect(
      withFrozenImages(
        images,
        silentLogger,
        async () => undefined,
        async () => {
          await new Promise((_done, fail) => deadline.addEventListener("abort", () => fail(new Error("deadline"))));
        },
      ),
    ).rejects.toThrow(/deadline/);
    expect(await Promise.all(mounts.map(isFrozen))).toEqual([false, false]);
    await exec("timeout", ["5", "sh", "-c", `echo written > ${mounts[0] ?? ""}/after`]);
  });
});
