// @module-tag needs-root
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { blockDeviceNumber } from "../../src/mounter/device.js";
import { bindMount } from "../../src/mounter/mount.js";
import { mountBacking } from "../../src/mounter/mount-point.js";
import { mountAt, readMountInfo, type MountEntry } from "../../src/mounter/mountinfo.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, cleanHost, newLoop, sh } from "./loop-fixture.js";

let dir: string;
beforeAll(async () => {
  dir = await makeTestDir("mounter-backing");
});
afterEach(async () => {
  await cleanHost(dir);
});
afterAll(async () => {
  await cleanHost(dir);
  await removeTestDir(dir);
});

async function entryAt(path: string): Promise<MountEntry> {
  const entry = mountAt(await readMountInfo(), path);
  if (entry === undefined) throw new Error(`${path} is not a mount point`);
  return entry;
}

describe("mountBacking", () => {
  it("names the block device under a filesystem and under a bound device node", async () => {
    const { device } = await newLoop(dir, "backing.img", 16 * MiB);
    const number = await blockDeviceNumber(device);
    await sh("mkfs.ext4", "-q", device);
    const fsPoint = join(dir, "fs");
    await mkdir(fsPoint);
    await sh("mount", device, fsPoint);
    expect(await mountBacking(await entryAt(fsPoint))).toEqual({ kind: "device", device: number });

    const nodeFile = join(dir, "node");
    await writeFile(nodeFile, "");
    await bindMount(device, nodeFile, []);
    const bound = await entryAt(nodeFile);
    expect(bound.fsType).toBe("devtmpfs");
    expect(await mountBacking(bound)).toEqual({ kind: "device", device: number });
  });

  it("says none for a filesystem without a device, and vanished for a device that is gone", async () => {
    const tmp = join(dir, "tmp");
    await mkdir(tmp);
    await sh("mount", "-t", "tmpfs", "-o", "size=1m", "backing-tmpfs", tmp);
    const tmpfs = await entryAt(tmp);
    expect(await mountBacking(tmpfs)).toEqual({ kind: "none" });
    // As mountinfo shows a filesystem whose disk was detached, and a bound node whose device went away.
    expect(await mountBacking({ ...tmpfs, fsType: "ext4", device: "259:999999", source: "/dev/sdzz" })).toEqual({ kind: "vanished" });
    expect(await mountBacking({ ...tmpfs, fsType: "devtmpfs", root: "/sdzz" })).toEqual({ kind: "vanished" });
    expect(await mountBacking({ ...tmpfs, fsType: "devtmpfs", root: "/null" })).toEqual({ kind: "none" });
  });
});
