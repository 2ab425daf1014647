// @module-tag needs-root
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { blockDeviceNumber, devicePathOf, formatDeviceNumber, isLoopDevice, refreshDeviceSize } from "../../src/mounter/device.js";
import { blockDeviceSize } from "../../src/mounter/loop.js";
import { mountFilesystem, unmountAll } from "../../src/mounter/mount.js";
import {
  filesystemSize,
  growFilesystem,
  growUnmountedExtFilesystem,
  parseDumpe2fsSize,
  parseXfsInfoSize,
} from "../../src/mounter/resize.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, cleanHost, newLoop, sh } from "./loop-fixture.js";

let dir: string;
beforeAll(async () => {
  dir = await makeTestDir("mounter-resize");
});
afterEach(async () => {
  await cleanHost(dir);
});
afterAll(async () => {
  await cleanHost(dir);
  await removeTestDir(dir);
});

async function grow(file: string, size: number): Promise<void> {
  const handle = await open(file, "r+");
  await handle.truncate(size);
  await handle.close();
}

describe("device numbers and sizes", () => {
  it("encodes dev_t like glibc's major()/minor()", () => {
    expect(formatDeviceNumber(0xfe00n)).toBe("254:0");
    expect(formatDeviceNumber(0x0703n)).toBe("7:3");
    // Minor numbers above 255 spill into the upper bits.
    expect(formatDeviceNumber((0x12n << 20n) | (0x7n << 8n) | 0x34n)).toBe("7:4660");
    expect(formatDeviceNumber((0x1n << 44n) | (0x7n << 8n) | 0x01n)).toBe("4103:1");
  });

  it("finds a loop device by number and sees it grow after a refresh", async () => {
    const { file, device } = await newLoop(dir, "dev.img", 16 * MiB);
    try {
      const number = await blockDeviceNumber(device);
      expect(number).toMatch(/^7:\d+$/);
      expect(await devicePathOf(number)).toBe(device);
      expect(await devicePathOf("250:4095")).toBeUndefined();
      expect(await isLoopDevice(device)).toBe(true);
      expect(await isLoopDevice("/dev/null")).toBe(false);
      await grow(file, 24 * MiB);
      expect(await blockDeviceSize(device)).toBe(16 * MiB);
      await refreshDeviceSize(device);
      expect(await blockDeviceSize(device)).toBe(24 * MiB);
    } finally {
      await sh("losetup", "-d", device);
    }
  });
});

describe("filesystem size and growth", () => {
  it("parses dumpe2fs and xfs_info", () => {
    expect(parseDumpe2fsSize("Block count:              819200\nBlock size:               1024\n")).toBe(819200 * 1024);
    expect(
      parseXfsInfoSize("meta-data=/dev/loop0 isize=512\ndata     =                       bsize=4096   blocks=102400, imaxpct=25\n"),
    ).toBe(102400 * 4096);
    expect(() => parseDumpe2fsSize("garbage")).toThrow(/unexpected dumpe2fs output/);
  });

  it("grows an unmounted ext4 filesystem to its device (offline, no CAP_SYS_RESOURCE needed)", async () => {
    const { file, device } = await newLoop(dir, "ext4.img", 32 * MiB);
    try {
      await sh("mkfs.ext4", "-q", "-F", device);
      expect(await filesystemSize(device, "ext4", undefined)).toBe(32 * MiB);
      await grow(file, 80 * MiB);
      await refreshDeviceSize(device);
      await growUnmountedExtFilesystem(device);
      expect(await filesystemSize(device, "ext4", undefined)).toBe(80 * MiB);
    } finally {
      await sh("losetup", "-d", device);
    }
  });

  it("grows a mounted xfs filesystem online", async () => {
    const { file, device } = await newLoop(dir, "xfs.img", 320 * MiB);
    const mp = join(dir, "xfs-mp");
    await mkdir(mp);
    try {
      await sh("mkfs.xfs", "-q", device);
      await mountFilesystem(device, mp, "xfs", ["nouuid"]);
      const before = await filesystemSize(device, "xfs", mp);
      await grow(file, 512 * MiB);
      await refreshDeviceSize(device);
      await growFilesystem(device, "xfs", mp);
      const after = await filesystemSize(device, "xfs", mp);
      expect(after - before).toBeGreaterThanOrEqual(190 * MiB);
      expect(after).toBeLessThanOrEqual(512 * MiB);
    } finally {
      await unmountAll(mp);
      await sh("losetup", "-d", device);
    }
  });

  it("refuses filesystems it does not know how to grow", async () => {
    await expect(growFilesystem("/dev/null", "btrfs", "/")).rejects.toThrow(/not supported/);
    await expect(filesystemSize("/dev/null", "vfat", undefined)).rejects.toThrow(/not supported/);
  });
});
