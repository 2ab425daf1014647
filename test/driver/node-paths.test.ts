// @module-tag needs-root
import { lstat, mkdir, readFile, readdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { CsiError, Code as StatusCode } from "../../src/csi/errors.js";
import { answeringLongNames } from "../../src/driver/node-request.js";
import { loopDevicesFor } from "../../src/mounter/loop.js";
import { mountDeadFuse } from "../mounter/broken-mounts.js";
import { MiB, blockCapability, expectCode, mountCapability, mountEntryAt, sh, useNodeHarness } from "./node-harness.js";

/**
 * The node service learns which volume a request is about before it touches a
 * path: a mount that is not the volume's is never unmounted or removed, an
 * unknown volume leaves no directory behind, and paths and fields over the
 * spec's and the OS's limits are INVALID_ARGUMENT naming the field.
 */
const h = useNodeHarness("node-paths");

const cap = mountCapability("ext4");

/** A tmpfs mounted at `path` (created) holding a file; returns the file. */
async function tmpfsWithFile(path: string): Promise<string> {
  await mkdir(path, { recursive: true });
  await sh("mount", "-t", "tmpfs", "-o", "size=1m", "precious-tmpfs", path);
  const file = join(path, "precious.txt");
  await writeFile(file, "data that must survive");
  return file;
}

async function expectTmpfsIntact(path: string, file: string): Promise<void> {
  const entry = await mountEntryAt(path);
  expect(entry?.fsType).toBe("tmpfs");
  expect(entry?.source).toBe("precious-tmpfs");
  expect(await readFile(file, "utf8")).toBe("data that must survive");
}

describe("a path that holds a mount which is not the volume's is left alone", () => {
  it("NodeUnpublishVolume with a made-up volume_id refuses to unmount a tmpfs at target_path", async () => {
    const target = await h.path("tmpfs-target", "target");
    const file = await tmpfsWithFile(target);
    try {
      const message = await expectCode(
        h.node.nodeUnpublishVolume({ volumeId: "made-up-volume", targetPath: target }),
        Code.FailedPrecondition,
      );
      expect(message).toContain("target_path");
      expect(message).toContain("tmpfs");
      await expectTmpfsIntact(target, file);
    } finally {
      await sh("umount", target);
    }
  });

  it("NodeUnstageVolume with a made-up volume_id refuses to unmount a tmpfs at staging_target_path", async () => {
    const staging = await h.path("tmpfs-staging", "staging");
    const file = await tmpfsWithFile(staging);
    try {
      const message = await expectCode(
        h.node.nodeUnstageVolume({ volumeId: "made-up-volume", stagingTargetPath: staging }),
        Code.FailedPrecondition,
      );
      expect(message).toContain("staging_target_path");
      await expectTmpfsIntact(staging, file);
      // A real volume that is not staged there does not license it either.
      await h.createVolume("tmpfs-real", 16 * MiB);
      await expectCode(h.node.nodeUnstageVolume({ volumeId: "tmpfs-real", stagingTargetPath: staging }), Code.FailedPrecondition);
      await expectTmpfsIntact(staging, file);
    } finally {
      await sh("umount", staging);
    }
  });

  it("a broken mount stacked on a foreign mount does not license unmounting the stack", async () => {
    const target = await h.path("stacked", "target");
    const file = await tmpfsWithFile(target);
    try {
      await mountDeadFuse(target);
      await expectCode(h.node.nodeUnpublishVolume({ volumeId: "made-up-volume", targetPath: target }), Code.FailedPrecondition);
      expect((await mountEntryAt(target))?.fsType).toBe("fuse");
      await sh("umount", "-l", target);
      await expectTmpfsIntact(target, file);
    } finally {
      await h.cleanupHost();
    }
  });

  it("NodePublishVolume replaces a broken target only when nothing foreign lies beneath it", async () => {
    const id = "paths-republish";
    const image = await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    const target = await h.path(id, "target");
    try {
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
      const file = await tmpfsWithFile(target);
      await mountDeadFuse(target);
      const message = await expectCode(
        h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: cap }),
        Code.FailedPrecondition,
      );
      expect(message).toContain("tmpfs");
      await sh("umount", "-l", target);
      await expectTmpfsIntact(target, file);
      await sh("umount", target);
      await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: cap });
      await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });

  it("another volume's staging and publication survive unpublish and unstage naming a different volume", async () => {
    const owner = "paths-owner";
    const other = "paths-other";
    const image = await h.createVolume(owner, 64 * MiB);
    await h.createVolume(other, 64 * MiB);
    const staging = await h.path(owner, "staging");
    const target = await h.path(owner, "target");
    try {
      await h.node.nodeStageVolume({ volumeId: owner, stagingTargetPath: staging, volumeCapability: cap });
      await h.node.nodePublishVolume({ volumeId: owner, stagingTargetPath: staging, targetPath: target, volumeCapability: cap });
      await writeFile(join(target, "owned.txt"), "the owner's data");
      const stagedBefore = await mountEntryAt(staging);
      const publishedBefore = await mountEntryAt(target);

      for (const volumeId of [other, "made-up-volume"]) {
        await expectCode(h.node.nodeUnpublishVolume({ volumeId, targetPath: target }), Code.FailedPrecondition);
        await expectCode(h.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging }), Code.FailedPrecondition);
      }
      expect(await mountEntryAt(target)).toEqual(publishedBefore);
      expect(await mountEntryAt(staging)).toEqual(stagedBefore);
      expect(await readFile(join(target, "owned.txt"), "utf8")).toBe("the owner's data");

      // The owner's own calls still clean up everything.
      await h.node.nodeUnpublishVolume({ volumeId: owner, targetPath: target });
      await h.node.nodeUnstageVolume({ volumeId: owner, stagingTargetPath: staging });
      await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      expect(await mountEntryAt(staging)).toBeUndefined();
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });

  it("another volume's block publication survives unpublish naming a different volume", async () => {
    const owner = "paths-block-owner";
    const image = await h.createVolume(owner, 16 * MiB);
    const staging = await h.path(owner, "staging");
    const target = await h.path(owner, "device");
    try {
      await h.node.nodeStageVolume({ volumeId: owner, stagingTargetPath: staging, volumeCapability: blockCapability() });
      await h.node.nodePublishVolume({
        volumeId: owner,
        stagingTargetPath: staging,
        targetPath: target,
        volumeCapability: blockCapability(),
      });
      await expectCode(h.node.nodeUnpublishVolume({ volumeId: "made-up-volume", targetPath: target }), Code.FailedPrecondition);
      expect((await lstat(target)).isBlockDevice()).toBe(true);
      expect(await mountEntryAt(target)).toBeDefined();
      await h.node.nodeUnpublishVolume({ volumeId: owner, targetPath: target });
      await h.node.nodeUnstageVolume({ volumeId: owner, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });
});

describe("the volume is known before anything is created", () => {
  it("NodeStageVolume of an unknown volume answers NOT_FOUND and creates no staging directory", async () => {
    const staging = join(await h.path("unknown", "staging"));
    for (const volumeId of ["no-such-volume", "Not/A/Local/Id"]) {
      await expectCode(h.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: cap }), Code.NotFound);
      await expect(lstat(staging)).rejects.toMatchObject({ code: "ENOENT" });
    }
  });
});

describe("paths over the OS limits", () => {
  const longName = "n".repeat(256);

  it("a component over 255 bytes is INVALID_ARGUMENT naming the field, for every node RPC, and nothing is created", async () => {
    const base = await h.path("long", "x");
    await mkdir(base);
    const tooLong = join(base, longName);
    await h.createVolume("long-volume", 16 * MiB);
    const calls: [string, () => Promise<unknown>][] = [
      ["staging_target_path", () => h.node.nodeStageVolume({ volumeId: "long-volume", stagingTargetPath: tooLong, volumeCapability: cap })],
      ["staging_target_path", () => h.node.nodeUnstageVolume({ volumeId: "long-volume", stagingTargetPath: tooLong })],
      [
        "target_path",
        () => h.node.nodePublishVolume({ volumeId: "long-volume", stagingTargetPath: base, targetPath: tooLong, volumeCapability: cap }),
      ],
      [
        "staging_target_path",
        () => h.node.nodePublishVolume({ volumeId: "long-volume", stagingTargetPath: tooLong, targetPath: base, volumeCapability: cap }),
      ],
      ["target_path", () => h.node.nodeUnpublishVolume({ volumeId: "long-volume", targetPath: tooLong })],
      ["volume_path", () => h.node.nodeGetVolumeStats({ volumeId: "long-volume", volumePath: tooLong })],
      ["staging_target_path", () => h.node.nodeGetVolumeStats({ volumeId: "long-volume", volumePath: base, stagingTargetPath: tooLong })],
      ["volume_path", () => h.node.nodeExpandVolume({ volumeId: "long-volume", volumePath: tooLong })],
    ];
    for (const [field, call] of calls) {
      const message = await expectCode(call(), Code.InvalidArgument);
      expect(message).toContain(field);
      expect(message).toContain("256 bytes");
      expect(message).not.toContain(longName);
    }
    expect(await readdir(base)).toEqual([]);
  });

  it("a path over 4096 bytes is INVALID_ARGUMENT with its size", async () => {
    const path = `/${Array.from({ length: 20 }, () => "d".repeat(250)).join("/")}`;
    const message = await expectCode(h.node.nodeUnpublishVolume({ volumeId: "v", targetPath: path }), Code.InvalidArgument);
    expect(message).toContain(`target_path is ${Buffer.byteLength(path)} bytes long`);
  });

  it("ENAMETOOLONG from the host is INVALID_ARGUMENT, not INTERNAL, and does not echo the path", async () => {
    const path = join(h.dir, "e".repeat(300));
    const err = await answeringLongNames(() => lstat(path)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(CsiError);
    expect((err as CsiError).code).toBe(StatusCode.InvalidArgument);
    expect((err as CsiError).rawMessage).toContain("ENAMETOOLONG");
    expect((err as CsiError).rawMessage).not.toContain(path);
  });
});

describe("fields over the spec's size limits", () => {
  const big = (bytes: number): Record<string, string> => ({ key: "s".repeat(bytes) });

  it("volume_id over 128 bytes is INVALID_ARGUMENT naming the field and its size, for every node RPC", async () => {
    const staging = await h.path("sizes", "staging");
    const target = await h.path("sizes", "target");
    const volumeId = "v".repeat(129);
    const calls = [
      () => h.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: cap }),
      () => h.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging }),
      () => h.node.nodePublishVolume({ volumeId, stagingTargetPath: staging, targetPath: target, volumeCapability: cap }),
      () => h.node.nodeUnpublishVolume({ volumeId, targetPath: target }),
      () => h.node.nodeGetVolumeStats({ volumeId, volumePath: target }),
      () => h.node.nodeExpandVolume({ volumeId, volumePath: target }),
    ];
    for (const call of calls) {
      const message = await expectCode(call(), Code.InvalidArgument);
      expect(message).toContain("volume_id is 129 bytes");
    }
    await expect(lstat(staging)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("maps over 4 KiB are INVALID_ARGUMENT naming the map and its size, never echoing a secret", async () => {
    const staging = await h.path("maps", "staging");
    const target = await h.path("maps", "target");
    await h.createVolume("maps-volume", 16 * MiB);
    const secret = `secret-${"x".repeat(4100)}`;
    const base = { volumeId: "maps-volume", stagingTargetPath: staging, volumeCapability: cap };
    const cases: [string, () => Promise<unknown>][] = [
      ["publish_context", () => h.node.nodeStageVolume({ ...base, publishContext: big(4100) })],
      ["volume_context", () => h.node.nodeStageVolume({ ...base, volumeContext: big(4100) })],
      ["secrets", () => h.node.nodeStageVolume({ ...base, secrets: { password: secret } })],
      ["publish_context", () => h.node.nodePublishVolume({ ...base, targetPath: target, publishContext: big(4100) })],
      ["volume_context", () => h.node.nodePublishVolume({ ...base, targetPath: target, volumeContext: big(4100) })],
      ["secrets", () => h.node.nodePublishVolume({ ...base, targetPath: target, secrets: { password: secret } })],
      ["secrets", () => h.node.nodeExpandVolume({ volumeId: "maps-volume", volumePath: staging, secrets: { password: secret } })],
    ];
    for (const [field, call] of cases) {
      const message = await expectCode(call(), Code.InvalidArgument);
      expect(message).toContain(field);
      expect(message).toMatch(/\d+ bytes/);
      expect(message).not.toContain("secret-");
    }
    await expect(lstat(staging)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("fs_type over 128 bytes, mount_flags over 4 KiB and volume_mount_group over 128 bytes are INVALID_ARGUMENT with their size", async () => {
    const staging = await h.path("capability", "staging");
    const cases: [string, ReturnType<typeof mountCapability>][] = [
      ["volume_capability.mount.fs_type is 129 bytes", mountCapability("f".repeat(129))],
      [
        "volume_capability.mount.mount_flags total 4100 bytes",
        mountCapability(
          "ext4",
          Array.from({ length: 41 }, () => "o".repeat(100)),
        ),
      ],
      [
        "volume_capability.mount.volume_mount_group is 129 bytes",
        {
          accessType: { case: "mount", value: { fsType: "ext4", volumeMountGroup: "1".repeat(129) } },
          accessMode: { mode: Mode.SINGLE_NODE_WRITER },
        },
      ],
    ];
    for (const [expected, volumeCapability] of cases) {
      const message = await expectCode(
        h.node.nodeStageVolume({ volumeId: "capability-volume", stagingTargetPath: staging, volumeCapability }),
        Code.InvalidArgument,
      );
      expect(message).toContain(expected);
    }
  });
});
