// @module-tag needs-root
import { mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { bindMount, mountFilesystem, unmountAll } from "../../src/mounter/mount.js";
import { inspectMountPoint } from "../../src/mounter/mount-point.js";
import { mountAt, readMountInfo } from "../../src/mounter/mountinfo.js";
import { canonicalPath, inspectPath } from "../../src/mounter/paths.js";
import { propagationProblem } from "../../src/mounter/propagation.js";
import { filesystemUsage } from "../../src/mounter/stats.js";
import { blockDeviceNumber } from "../../src/mounter/device.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, cleanHost, newLoop, sh } from "./loop-fixture.js";
import { mountDeadFuse, occupy, release } from "./broken-mounts.js";

let dir: string;
beforeAll(async () => {
  dir = await makeTestDir("mounter-mount");
});
afterEach(async () => {
  await cleanHost(dir);
});
afterAll(async () => {
  await cleanHost(dir);
  await removeTestDir(dir);
});

async function entry(path: string) {
  return mountAt(await readMountInfo(), path);
}

async function tmpfsAt(path: string, options = "size=8m"): Promise<void> {
  await mkdir(path, { recursive: true });
  await sh("mount", "-t", "tmpfs", "-o", options, "test-tmpfs", path);
}

describe("bind mounts", () => {
  it("applies read-only with a bind remount and keeps the flags the mount inherited", async () => {
    const source = join(dir, "bind-src");
    const target = join(dir, "bind-dst");
    await tmpfsAt(source, "size=8m,nosuid,nodev");
    await mkdir(target);
    await bindMount(source, target, ["ro"]);
    const options = (await entry(target))?.options ?? [];
    expect(options).toEqual(expect.arrayContaining(["ro", "nosuid", "nodev"]));
    await expect(writeFile(join(target, "x"), "x")).rejects.toMatchObject({ code: "EROFS" });
    await writeFile(join(source, "y"), "through the source");
    expect(await readFile(join(target, "y"), "utf8")).toBe("through the source");
    expect(await unmountAll(target)).toEqual({ unmounted: 1, lazy: false });
    expect(await entry(target)).toBeUndefined();
  });

  it("mounts nothing when the call is already cancelled", async () => {
    const source = join(dir, "cancel-src");
    const target = join(dir, "cancel-dst");
    await mkdir(source);
    await mkdir(target);
    await expect(bindMount(source, target, ["ro"], { signal: AbortSignal.abort() })).rejects.toThrow();
    expect(await entry(target)).toBeUndefined();
  });

  it("binds a device node onto a file, which inspectMountPoint reports as that block device", async () => {
    const { device } = await newLoop(dir, "node.img", 8 * MiB);
    const target = join(dir, "device-file");
    await writeFile(target, "");
    try {
      await bindMount(device, target, []);
      const state = await inspectMountPoint(target);
      expect(state).toMatchObject({ kind: "block", device: await blockDeviceNumber(device), devicePath: device });
    } finally {
      await unmountAll(target);
      await sh("losetup", "-d", device);
    }
  });
});

describe("unmountAll", () => {
  it("removes stacked mounts and succeeds on a path with nothing mounted", async () => {
    const path = join(dir, "stacked");
    await tmpfsAt(path);
    await sh("mount", "-t", "tmpfs", "second", path);
    expect(await unmountAll(path)).toEqual({ unmounted: 2, lazy: false });
    expect(await unmountAll(path)).toEqual({ unmounted: 0, lazy: false });
  });

  it("falls back to a lazy unmount when the mount is busy", async () => {
    const path = join(dir, "busy");
    await tmpfsAt(path);
    const squatter = occupy(path);
    try {
      await new Promise((r) => setTimeout(r, 100));
      await expect(sh("umount", path)).rejects.toThrow(/busy/);
      expect(await unmountAll(path)).toEqual({ unmounted: 1, lazy: true });
      expect(await entry(path)).toBeUndefined();
    } finally {
      await release(squatter);
    }
  });

  it("removes a mount whose filesystem is gone (ENOTCONN)", async () => {
    const path = join(dir, "dead");
    await mkdir(path);
    await mountDeadFuse(path);
    expect(await inspectPath(path)).toMatchObject({ kind: "corrupt", code: "ENOTCONN" });
    expect(await inspectMountPoint(path)).toMatchObject({ kind: "corrupt", mounted: true });
    expect((await unmountAll(path)).unmounted).toBe(1);
    expect(await inspectPath(path)).toEqual({ kind: "directory" });
  });
});

describe("paths and mount points", () => {
  it("tells missing paths, plain directories and files, and mounts without a block device apart", async () => {
    const file = join(dir, "plain-file");
    await writeFile(file, "abc");
    expect(await inspectPath(join(dir, "nope"))).toEqual({ kind: "missing" });
    expect(await inspectMountPoint(file)).toEqual({ kind: "file", size: 3 });
    expect(await inspectMountPoint(dir)).toEqual({ kind: "directory" });
    const tmp = join(dir, "tmpfs-mp");
    await tmpfsAt(tmp);
    expect(await inspectMountPoint(tmp)).toMatchObject({ kind: "filesystem", devicePath: undefined });
  });

  it("canonicalises the parent but not the last component", async () => {
    const real = join(dir, "real-parent");
    await mkdir(real);
    await symlink(real, join(dir, "link-parent"));
    expect(await canonicalPath(join(dir, "link-parent", "child"))).toBe(join(await canonicalPath(real), "child"));
    expect(await canonicalPath("/")).toBe("/");
  });

  it("mounts a filesystem from a loop device and reports the same usage as df", async () => {
    const { device } = await newLoop(dir, "fs.img", 64 * MiB);
    const mp = join(dir, "fs-mp");
    await mkdir(mp);
    try {
      await sh("mkfs.ext4", "-q", "-F", device);
      await mountFilesystem(device, mp, "ext4", ["noatime"]);
      const state = await inspectMountPoint(mp);
      expect(state).toMatchObject({ kind: "filesystem", device: await blockDeviceNumber(device), devicePath: device });
      await writeFile(join(mp, "data"), Buffer.alloc(3 * MiB, 1));
      await sh("sync");
      const usage = await filesystemUsage(mp);
      const [size, used, avail] = (await sh("df", "-B1", "--output=size,used,avail", mp))
        .trim()
        .split("\n")[1]!
        .trim()
        .split(/\s+/)
        .map(BigInt);
      expect(usage.bytes).toEqual({ total: size, used, available: avail });
      expect(usage.inodes.used).toBeGreaterThan(0n);
    } finally {
      await unmountAll(mp);
      await sh("losetup", "-d", device);
    }
  });
});

describe("mount propagation", () => {
  it("flags paths below the kubelet directory on a private or slave mount, not elsewhere", async () => {
    const kubelet = join(await canonicalPath(dir), "kubelet");
    await mkdir(join(kubelet, "pods"), { recursive: true });
    await sh("mount", "--bind", kubelet, kubelet);
    await sh("mount", "--make-private", kubelet);
    const target = join(kubelet, "pods", "x");
    expect(propagationProblem(await readMountInfo(), target, kubelet)).toMatch(/which is private, not shared/);
    expect(propagationProblem(await readMountInfo(), join(dir, "elsewhere"), kubelet)).toBeUndefined();
    await sh("mount", "--make-shared", kubelet);
    expect(propagationProblem(await readMountInfo(), target, kubelet)).toBeUndefined();
    expect((await stat(kubelet)).isDirectory()).toBe(true);
  });
});
