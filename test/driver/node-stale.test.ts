// @module-tag needs-root
import { readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loopDevicesFor } from "../../src/mounter/loop.js";
import { MiB, mountCapability, mountEntryAt, useNodeHarness } from "./node-harness.js";
import { mountDeadFuse, occupy, release } from "../mounter/broken-mounts.js";

const h = useNodeHarness("node-stale");

const cap = mountCapability("ext4");

async function stageAndPublish(id: string): Promise<{ staging: string; target: string; image: string }> {
  const image = await h.createVolume(id, 64 * MiB);
  const staging = await h.path(id, "staging");
  const target = await h.path(id, "target");
  await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
  await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: cap });
  return { staging, target, image };
}

describe("stale, broken and busy mounts never wedge a volume", () => {
  it("unpublishes a target whose mount is broken (ENOTCONN), including the publication beneath it", async () => {
    const id = "stale-target";
    const { staging, target, image } = await stageAndPublish(id);
    try {
      await mountDeadFuse(target);
      await expect(stat(target)).rejects.toMatchObject({ code: "ENOTCONN" });
      await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });

  it("publishes over a target left with a broken mount by replacing it", async () => {
    const id = "stale-republish";
    const image = await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    const target = await h.path(id, "target");
    try {
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
      await writeFile(join(staging, "marker"), "volume content");
      await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      const { mkdir } = await import("node:fs/promises");
      await mkdir(target);
      await mountDeadFuse(target);
      await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: cap });
      expect(await readFile(join(target, "marker"), "utf8")).toBe("volume content");
      await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await h.cleanupHost();
    }
  });

  it("detaches a busy target lazily instead of failing for ever", async () => {
    const id = "busy-target";
    const { staging, target, image } = await stageAndPublish(id);
    const squatter = occupy(target);
    try {
      await new Promise((r) => setTimeout(r, 100));
      await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
      expect(await mountEntryAt(target)).toBeUndefined();
      await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      // The filesystem stays alive for the squatter; once it exits, unstage releases everything.
      await release(squatter);
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await loopDevicesFor(image)).toEqual([]);
    } finally {
      await release(squatter);
      await h.cleanupHost();
    }
  });

  it("unstages a staging path whose mount is broken, and stages it again", async () => {
    const id = "stale-staging";
    const image = await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    try {
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
      await mountDeadFuse(staging);
      await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
      expect((await mountEntryAt(staging))?.fsType).toBe("ext4");
      // A broken mount on top of the staged volume: it goes first, then the volume beneath is unstaged as usual.
      await mountDeadFuse(staging);
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      expect(await mountEntryAt(staging)).toBeUndefined();
      expect(await loopDevicesFor(image)).toEqual([]);
      await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
    } finally {
      await h.cleanupHost();
    }
  });
});
