// @module-tag needs-root
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { loopDevicesFor } from "../../src/mounter/loop.js";
import { MiB, blockCapability, expectCode, mountCapability, mountEntryAt, sh, useNodeHarness } from "./node-harness.js";

const h = useNodeHarness("node-mount");

const FILESYSTEMS = [
  { fsType: "ext4", requested: "", size: 64 * MiB },
  { fsType: "ext3", requested: "ext3", size: 64 * MiB },
  { fsType: "xfs", requested: "xfs", size: 320 * MiB },
];

describe.each(FILESYSTEMS)("mount volume round trip ($fsType)", ({ fsType, requested, size }) => {
  it("formats a blank volume once, shares data between targets, enforces read-only, and cleans up", async () => {
    const id = `rt-${fsType}`;
    const image = await h.createVolume(id, size);
    const staging = await h.path(id, "staging");
    const rw1 = await h.path(id, "pods", "a", "mount");
    const rw2 = await h.path(id, "pods", "b", "mount");
    const ro = await h.path(id, "pods", "c", "mount");
    const capability = mountCapability(requested);
    try {
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
      const staged = await mountEntryAt(staging);
      expect(staged?.fsType).toBe(fsType);
      const [loop] = await loopDevicesFor(image);
      expect(staged?.source).toBe(loop);
      if (fsType === "xfs") expect(staged?.superOptions).toContain("nouuid");
      const uuid = (await sh("blkid", "-p", "-s", "UUID", "-o", "value", loop ?? "")).trim();
      expect(uuid).not.toBe("");

      for (const target of [rw1, rw2]) {
        await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
      }
      await h.node.nodePublishVolume({
        volumeId: id,
        stagingTargetPath: staging,
        targetPath: ro,
        volumeCapability: capability,
        readonly: true,
      });
      expect((await mountEntryAt(ro))?.options).toContain("ro");

      await writeFile(join(rw1, "hello.txt"), "written through the first target");
      expect(await readFile(join(rw2, "hello.txt"), "utf8")).toBe("written through the first target");
      expect(await readFile(join(ro, "hello.txt"), "utf8")).toBe("written through the first target");
      await expect(writeFile(join(ro, "nope.txt"), "x")).rejects.toMatchObject({ code: "EROFS" });

      for (const target of [rw1, rw2, ro]) await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      for (const target of [rw1, rw2, ro]) await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await mountEntryAt(staging)).toBeUndefined();
      expect(await loopDevicesFor(image)).toEqual([]);

      // Staged again: the same filesystem, with the data, is mounted; nothing is reformatted.
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
      expect(await readFile(join(staging, "hello.txt"), "utf8")).toBe("written through the first target");
      const [loopAgain] = await loopDevicesFor(image);
      expect((await sh("blkid", "-p", "-s", "UUID", "-o", "value", loopAgain ?? "")).trim()).toBe(uuid);
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });
});

describe("idempotency and conflicts", () => {
  it("repeats every call with the same arguments successfully", async () => {
    const id = "idem";
    const image = await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    const target = await h.path(id, "target");
    const capability = mountCapability("ext4", ["noatime"]);
    try {
      for (let i = 0; i < 2; i++) await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
      for (let i = 0; i < 2; i++)
        await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
      expect((await mountEntryAt(target))?.options).toContain("noatime");
      expect((await loopDevicesFor(image)).length).toBe(1);
      for (let i = 0; i < 2; i++) await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      for (let i = 0; i < 2; i++) await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });

  it("answers ALREADY_EXISTS for an incompatible repeat and FAILED_PRECONDITION for an unstaged or mis-staged volume", async () => {
    const a = "conflict-a";
    const b = "conflict-b";
    await h.createVolume(a, 64 * MiB);
    await h.createVolume(b, 64 * MiB);
    const stagingA = await h.path(a, "staging");
    const stagingB = await h.path(b, "staging");
    const target = await h.path(a, "target");
    const ext4 = mountCapability("ext4");
    try {
      await h.node.nodeStageVolume({ volumeId: a, stagingTargetPath: stagingA, volumeCapability: ext4 });
      // Same staging path, another filesystem type / access type / volume.
      await expectCode(
        h.node.nodeStageVolume({ volumeId: a, stagingTargetPath: stagingA, volumeCapability: mountCapability("xfs") }),
        Code.AlreadyExists,
      );
      await expectCode(
        h.node.nodeStageVolume({ volumeId: a, stagingTargetPath: stagingA, volumeCapability: blockCapability() }),
        Code.AlreadyExists,
      );
      await expectCode(
        h.node.nodeStageVolume({ volumeId: a, stagingTargetPath: stagingA, volumeCapability: mountCapability("ext4", ["ro"]) }),
        Code.AlreadyExists,
      );
      await expectCode(h.node.nodeStageVolume({ volumeId: b, stagingTargetPath: stagingA, volumeCapability: ext4 }), Code.AlreadyExists);

      // Publishing a volume that is not staged, or without a staging path.
      const notStaged = await expectCode(
        h.node.nodePublishVolume({ volumeId: b, stagingTargetPath: stagingB, targetPath: target, volumeCapability: ext4 }),
        Code.FailedPrecondition,
      );
      expect(notStaged).toMatch(/not staged/);
      await expectCode(h.node.nodePublishVolume({ volumeId: a, targetPath: target, volumeCapability: ext4 }), Code.FailedPrecondition);
      // Staged as a filesystem, published for block access.
      await expectCode(
        h.node.nodePublishVolume({ volumeId: a, stagingTargetPath: stagingA, targetPath: target, volumeCapability: blockCapability() }),
        Code.FailedPrecondition,
      );

      await h.node.nodePublishVolume({ volumeId: a, stagingTargetPath: stagingA, targetPath: target, volumeCapability: ext4 });
      // Same target: read-only instead of read-write, other mount flags, another volume.
      await expectCode(
        h.node.nodePublishVolume({ volumeId: a, stagingTargetPath: stagingA, targetPath: target, volumeCapability: ext4, readonly: true }),
        Code.AlreadyExists,
      );
      await expectCode(
        h.node.nodePublishVolume({
          volumeId: a,
          stagingTargetPath: stagingA,
          targetPath: target,
          volumeCapability: mountCapability("ext4", ["noexec"]),
        }),
        Code.AlreadyExists,
      );
      await h.node.nodeStageVolume({ volumeId: b, stagingTargetPath: stagingB, volumeCapability: ext4 });
      await expectCode(
        h.node.nodePublishVolume({ volumeId: b, stagingTargetPath: stagingB, targetPath: target, volumeCapability: ext4 }),
        Code.AlreadyExists,
      );

      // Unstaging while still published is refused, and changes nothing.
      const published = await expectCode(h.node.nodeUnstageVolume({ volumeId: a, stagingTargetPath: stagingA }), Code.FailedPrecondition);
      expect(published).toContain(target);
      expect(await mountEntryAt(stagingA)).toBeDefined();

      await h.node.nodeUnpublishVolume({ volumeId: a, targetPath: target });
      await h.node.nodeUnstageVolume({ volumeId: a, stagingTargetPath: stagingA });
      await h.node.nodeUnstageVolume({ volumeId: b, stagingTargetPath: stagingB });
    } finally {
      await h.cleanupHost();
    }
  });

  it("enforces SINGLE_NODE_SINGLE_WRITER only when the alpha switch accepts that mode", async () => {
    const id = "single-writer";
    await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    const capability = mountCapability("ext4", [], Mode.SINGLE_NODE_SINGLE_WRITER);
    // Not enabled in this plugin: the mode exceeds its capabilities.
    await expectCode(
      h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability }),
      Code.FailedPrecondition,
    );
    await expectCode(
      h.node.nodeStageVolume({
        volumeId: id,
        stagingTargetPath: staging,
        volumeCapability: mountCapability("ext4", [], Mode.MULTI_NODE_MULTI_WRITER),
      }),
      Code.FailedPrecondition,
    );
  });
});

describe("required fields and bad arguments", () => {
  const cap = mountCapability();
  it("answers INVALID_ARGUMENT before touching anything", async () => {
    const staging = await h.path("args", "staging");
    await expectCode(h.node.nodeStageVolume({ stagingTargetPath: staging, volumeCapability: cap }), Code.InvalidArgument);
    await expectCode(h.node.nodeStageVolume({ volumeId: "x", volumeCapability: cap }), Code.InvalidArgument);
    await expectCode(h.node.nodeStageVolume({ volumeId: "x", stagingTargetPath: staging }), Code.InvalidArgument);
    await expectCode(
      h.node.nodeStageVolume({ volumeId: "x", stagingTargetPath: "relative/path", volumeCapability: cap }),
      Code.InvalidArgument,
    );
    await expectCode(
      h.node.nodeStageVolume({
        volumeId: "x",
        stagingTargetPath: staging,
        volumeCapability: { accessMode: { mode: Mode.SINGLE_NODE_WRITER } },
      }),
      Code.InvalidArgument,
    );
    await expectCode(
      h.node.nodeStageVolume({ volumeId: "x", stagingTargetPath: staging, volumeCapability: { accessType: { case: "mount", value: {} } } }),
      Code.InvalidArgument,
    );
    for (const flag of ["bind", "remount", "rbind", "make-shared", "loop=/dev/loop0", "x-mount.mkdir", "a b"]) {
      const message = await expectCode(
        h.node.nodeStageVolume({ volumeId: "x", stagingTargetPath: staging, volumeCapability: mountCapability("ext4", [flag]) }),
        Code.InvalidArgument,
      );
      expect(message).toContain("mount_flags");
    }
    await expectCode(
      h.node.nodeStageVolume({
        volumeId: "x",
        stagingTargetPath: staging,
        volumeCapability: {
          accessType: { case: "mount", value: { volumeMountGroup: "1000" } },
          accessMode: { mode: Mode.SINGLE_NODE_WRITER },
        },
      }),
      Code.InvalidArgument,
    );
    await expectCode(h.node.nodeUnstageVolume({ stagingTargetPath: staging }), Code.InvalidArgument);
    await expectCode(h.node.nodeUnstageVolume({ volumeId: "x" }), Code.InvalidArgument);
    await expectCode(
      h.node.nodePublishVolume({ stagingTargetPath: staging, targetPath: staging, volumeCapability: cap }),
      Code.InvalidArgument,
    );
    await expectCode(h.node.nodePublishVolume({ volumeId: "x", stagingTargetPath: staging, volumeCapability: cap }), Code.InvalidArgument);
    await expectCode(
      h.node.nodePublishVolume({ volumeId: "x", stagingTargetPath: staging, targetPath: `${staging}-t` }),
      Code.InvalidArgument,
    );
    await expectCode(h.node.nodeUnpublishVolume({ targetPath: staging }), Code.InvalidArgument);
    await expectCode(h.node.nodeUnpublishVolume({ volumeId: "x" }), Code.InvalidArgument);
    await expectCode(h.node.nodeGetVolumeStats({ volumePath: staging }), Code.InvalidArgument);
    await expectCode(h.node.nodeGetVolumeStats({ volumeId: "x" }), Code.InvalidArgument);
    await expectCode(h.node.nodeExpandVolume({ volumePath: staging }), Code.InvalidArgument);
    await expectCode(h.node.nodeExpandVolume({ volumeId: "x" }), Code.InvalidArgument);
    await expectCode(
      h.node.nodeExpandVolume({ volumeId: "x", volumePath: staging, capacityRange: { requiredBytes: 10n, limitBytes: 5n } }),
      Code.InvalidArgument,
    );
  });

  it("answers NOT_FOUND for a volume that does not exist, and INVALID_ARGUMENT for a staging path without a parent", async () => {
    const staging = await h.path("missing", "staging");
    await expectCode(
      h.node.nodeStageVolume({ volumeId: "no-such-volume", stagingTargetPath: staging, volumeCapability: cap }),
      Code.NotFound,
    );
    await expectCode(
      h.node.nodeStageVolume({ volumeId: "Not/A/Local/Id", stagingTargetPath: staging, volumeCapability: cap }),
      Code.NotFound,
    );
    await h.createVolume("orphan-parent", 64 * MiB);
    await expectCode(
      h.node.nodeStageVolume({
        volumeId: "orphan-parent",
        stagingTargetPath: join(h.dir, "nowhere", "deeper", "staging"),
        volumeCapability: cap,
      }),
      Code.InvalidArgument,
    );
  });

  it("unpublishes and unstages paths that hold nothing as a no-op", async () => {
    const target = await h.path("noop", "target");
    const staging = await h.path("noop", "staging");
    await h.node.nodeUnpublishVolume({ volumeId: "whatever", targetPath: target });
    await h.node.nodeUnstageVolume({ volumeId: "whatever", stagingTargetPath: staging });
    // Nothing was made, mounted or attached on the way.
    expect(await readdir(join(target, ".."))).toEqual([]);
    expect(await h.leftovers()).toEqual([]);
  });
});
