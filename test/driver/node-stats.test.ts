// @module-tag needs-root
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { VolumeUsage_Unit, type NodeGetVolumeStatsResponse } from "../../src/gen/csi/v1/csi_pb.js";
import { MiB, df, dfInodes, expectCode, mountCapability, sh, startNode, type NodeHarness } from "./node-harness.js";
import { mountDeadFuse } from "../mounter/broken-mounts.js";

let plain: NodeHarness;
let alpha: NodeHarness;
beforeAll(async () => {
  plain = await startNode("node-stats");
  alpha = await startNode("node-stats-alpha", { alpha: ["volume-condition"] });
});
afterEach(async () => {
  const left = [...(await plain.leftovers()), ...(await alpha.leftovers())];
  await plain.cleanupHost();
  await alpha.cleanupHost();
  expect(left).toEqual([]);
});
afterAll(async () => {
  await plain?.stop();
  await alpha?.stop();
});

const cap = mountCapability("ext4");

async function stageAndPublish(h: NodeHarness, id: string): Promise<{ staging: string; target: string }> {
  await h.createVolume(id, 64 * MiB);
  const staging = await h.path(id, "staging");
  const target = await h.path(id, "target");
  await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: cap });
  await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: cap });
  return { staging, target };
}

async function teardown(h: NodeHarness, id: string, p: { staging: string; target: string }): Promise<void> {
  await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: p.target });
  await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: p.staging });
}

function usageOf(res: NodeGetVolumeStatsResponse, unit: VolumeUsage_Unit) {
  const usage = res.usage.find((u) => u.unit === unit);
  if (!usage) throw new Error(`no ${VolumeUsage_Unit[unit]} usage in the response`);
  return { total: Number(usage.total), used: Number(usage.used), available: Number(usage.available) };
}

describe("NodeGetVolumeStats", () => {
  it("reports bytes and inodes exactly as df does", async () => {
    const id = "stats-df";
    const p = await stageAndPublish(plain, id);
    try {
      await writeFile(join(p.target, "blob"), Buffer.alloc(5 * MiB, 1));
      for (let i = 0; i < 20; i++) await writeFile(join(p.target, `f${i}`), "x");
      await sh("sync");
      const res = await plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target, stagingTargetPath: p.staging });
      expect(res.volumeCondition).toBeUndefined();
      const bytes = usageOf(res, VolumeUsage_Unit.BYTES);
      const inodes = usageOf(res, VolumeUsage_Unit.INODES);
      const d = await df(p.target);
      const di = await dfInodes(p.target);
      expect(bytes).toEqual({ total: d.size, used: d.used, available: d.avail });
      expect(inodes).toEqual({ total: di.total, used: di.used, available: di.avail });
      expect(bytes.used).toBeGreaterThanOrEqual(5 * MiB);
      // Without staging_target_path too, and on the staging path itself.
      expect(usageOf(await plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target }), VolumeUsage_Unit.BYTES).total).toBe(
        d.size,
      );
      expect(usageOf(await plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.staging }), VolumeUsage_Unit.BYTES).total).toBe(
        d.size,
      );
      await teardown(plain, id, p);
    } finally {
      await plain.cleanupHost();
    }
  });

  it("answers NOT_FOUND for paths that are not a staging or publication of the volume", async () => {
    const id = "stats-nf";
    const other = "stats-other";
    const p = await stageAndPublish(plain, id);
    const q = await stageAndPublish(plain, other);
    try {
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: "some/path" }), Code.NotFound);
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: join(plain.dir, "nothing-here") }), Code.NotFound);
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: plain.dir }), Code.NotFound);
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: "/proc" }), Code.NotFound);
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: id, volumePath: q.target }), Code.NotFound);
      await expectCode(
        plain.node.nodeGetVolumeStats({ volumeId: other, volumePath: q.target, stagingTargetPath: p.staging }),
        Code.NotFound,
      );
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: "no-such-volume", volumePath: p.target }), Code.NotFound);
      await teardown(plain, id, p);
      await teardown(plain, other, q);
    } finally {
      await plain.cleanupHost();
    }
  });
});

describe("volume condition (alpha)", () => {
  it("is normal for a healthy mount", async () => {
    const id = "cond-ok";
    const p = await stageAndPublish(alpha, id);
    try {
      const res = await alpha.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target, stagingTargetPath: p.staging });
      expect(res.volumeCondition?.abnormal).toBe(false);
      expect(res.volumeCondition?.message).toMatch(/ext4 filesystem .* mounted read-write/);
      await teardown(alpha, id, p);
    } finally {
      await alpha.cleanupHost();
    }
  });

  it("is abnormal when the filesystem was remounted read-only under a read-write publication", async () => {
    const id = "cond-ro";
    const p = await stageAndPublish(alpha, id);
    try {
      // What ext4's errors=remount-ro does after an I/O error: the superblock becomes read-only.
      await sh("mount", "-o", "remount,ro", p.staging);
      const res = await alpha.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target, stagingTargetPath: p.staging });
      expect(res.volumeCondition?.abnormal).toBe(true);
      expect(res.volumeCondition?.message).toMatch(/remounted read-only/);
      expect(usageOf(res, VolumeUsage_Unit.BYTES).total).toBeGreaterThan(0);
      await teardown(alpha, id, p);
    } finally {
      await alpha.cleanupHost();
    }
  });

  it("is abnormal when the publication is missing or broken while the volume is staged", async () => {
    const id = "cond-missing";
    const p = await stageAndPublish(alpha, id);
    try {
      await alpha.node.nodeUnpublishVolume({ volumeId: id, targetPath: p.target });
      const missing = await alpha.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target, stagingTargetPath: p.staging });
      expect(missing.volumeCondition).toMatchObject({ abnormal: true });
      expect(missing.volumeCondition?.message).toMatch(/does not exist/);
      // Without the staging path nothing says the volume belongs here.
      await expectCode(alpha.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target }), Code.NotFound);

      const { mkdir } = await import("node:fs/promises");
      await mkdir(p.target);
      const unmounted = await alpha.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target, stagingTargetPath: p.staging });
      expect(unmounted.volumeCondition?.message).toMatch(/nothing mounted/);

      await mountDeadFuse(p.target);
      const broken = await alpha.node.nodeGetVolumeStats({ volumeId: id, volumePath: p.target, stagingTargetPath: p.staging });
      expect(broken.volumeCondition?.abnormal).toBe(true);
      expect(broken.volumeCondition?.message).toMatch(/broken.*not connected/i);
      expect(broken.usage).toEqual([]);
      // Without the alpha feature a broken mount is an error, not a condition.
      await alpha.node.nodeUnpublishVolume({ volumeId: id, targetPath: p.target });
      await alpha.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: p.staging });
      await rm(p.target, { recursive: true, force: true });
    } finally {
      await alpha.cleanupHost();
    }
  });

  it("a broken mount without the alpha feature is INTERNAL, not a silent success", async () => {
    const target = await plain.path("broken-plain", "target");
    const { mkdir } = await import("node:fs/promises");
    await mkdir(target);
    try {
      await mountDeadFuse(target);
      await expectCode(plain.node.nodeGetVolumeStats({ volumeId: "whatever", volumePath: target }), Code.Internal);
      await plain.node.nodeUnpublishVolume({ volumeId: "whatever", targetPath: target });
    } finally {
      await plain.cleanupHost();
    }
  });
});
