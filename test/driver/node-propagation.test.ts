// @module-tag needs-root
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MiB, expectCode, mountCapability, mountEntryAt, sh, startNode, type NodeHarness } from "./node-harness.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

/**
 * The kubelet directory of a containerised plugin without mountPropagation:
 * Bidirectional is a private mount; emulated with a private bind mount of a
 * directory onto itself below the test directory.
 */
describe("mount propagation check", () => {
  let h: NodeHarness;
  let base: string;
  let kubeletDir: string;
  beforeAll(async () => {
    base = await makeTestDir("node-kubelet");
    kubeletDir = join(base, "kubelet");
    await mkdir(join(kubeletDir, "plugins"), { recursive: true });
    await mkdir(join(kubeletDir, "pods"), { recursive: true });
    await sh("mount", "--bind", kubeletDir, kubeletDir);
    await sh("mount", "--make-private", kubeletDir);
    h = await startNode("node-propagation", { kubeletDir });
  });
  afterAll(async () => {
    try {
      await h?.stop();
    } finally {
      await sh("umount", "-l", kubeletDir).catch(() => undefined);
      await removeTestDir(base);
    }
  });

  it("refuses to stage or publish below a private kubelet directory, naming the fix, then works once it is shared", async () => {
    const id = "propagation";
    await h.createVolume(id, 64 * MiB);
    const staging = join(kubeletDir, "plugins", "staging");
    const target = join(kubeletDir, "pods", "target");
    const cap = mountCapability("ext4");
    try {
      const text = await expectCode(
        h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap }),
        Code.FailedPrecondition,
      );
      expect(text).toMatch(/mount propagation is disabled/);
      expect(text).toMatch(/private/);
      expect(text).toMatch(/mountPropagation: Bidirectional/);
      expect(await mountEntryAt(staging)).toBeUndefined();

      // Paths outside the kubelet directory are not subject to the check.
      const outside = await h.path("outside", "staging");
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: outside, volumeCapability: cap });
      await expectCode(
        h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: outside, targetPath: target, volumeCapability: cap }),
        Code.FailedPrecondition,
      );
      expect(await mountEntryAt(target)).toBeUndefined();
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: outside });

      await sh("mount", "--make-shared", kubeletDir);
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
      await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: cap });
      expect((await mountEntryAt(target))?.fsType).toBe("ext4");
      await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
    } finally {
      await h.cleanupHost();
    }
  });
});
