// @module-tag needs-root
import { readFileSync } from "node:fs";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { MiB, df, expectCode, mountCapability, useNodeHarness } from "./node-harness.js";

const h = useNodeHarness("node-expand");

/** ext4's online resize ioctl needs CAP_SYS_RESOURCE; some sandboxes drop it even for root. */
function hasCapSysResource(): boolean {
  const line = readFileSync("/proc/self/status", "utf8")
    .split("\n")
    .find((l) => l.startsWith("CapEff:"));
  return line !== undefined && (BigInt(`0x${line.split(/\s+/)[1] ?? "0"}`) & (1n << 24n)) !== 0n;
}

async function growImage(image: string, size: number): Promise<void> {
  const handle = await open(image, "r+");
  await handle.truncate(size);
  await handle.close();
}

interface Published {
  readonly staging: string;
  readonly target: string;
  readonly image: string;
}

async function stageAndPublish(id: string, fsType: string, size: number): Promise<Published> {
  const image = await h.createVolume(id, size);
  const staging = await h.path(id, "staging");
  const target = await h.path(id, "target");
  await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability(fsType) });
  await h.node.nodePublishVolume({
    volumeId: id,
    stagingTargetPath: staging,
    targetPath: target,
    volumeCapability: mountCapability(fsType),
  });
  await writeFile(join(target, "keep.txt"), "still here");
  return { staging, target, image };
}

async function teardown(id: string, p: Published): Promise<void> {
  await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: p.target });
  await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: p.staging });
}

describe("online expansion", () => {
  it("grows a published xfs filesystem and df shows it", async () => {
    const id = "grow-xfs";
    const p = await stageAndPublish(id, "xfs", 320 * MiB);
    try {
      const before = await df(p.target);
      // What ControllerExpandVolume does to a local volume, without refreshing the loop device: the node must.
      await growImage(p.image, 640 * MiB);
      const res = await h.node.nodeExpandVolume({
        volumeId: id,
        volumePath: p.target,
        stagingTargetPath: p.staging,
        capacityRange: { requiredBytes: BigInt(640 * MiB) },
      });
      expect(res.capacityBytes).toBe(BigInt(640 * MiB));
      const after = await df(p.target);
      expect(after.size - before.size).toBeGreaterThan(300 * MiB);
      expect(await readFile(join(p.target, "keep.txt"), "utf8")).toBe("still here");
      // Repeating it is a no-op with the same answer.
      expect(
        (await h.node.nodeExpandVolume({ volumeId: id, volumePath: p.target, capacityRange: { requiredBytes: BigInt(640 * MiB) } }))
          .capacityBytes,
      ).toBe(BigInt(640 * MiB));
      expect((await df(p.target)).size).toBe(after.size);
      await teardown(id, p);
    } finally {
      await h.cleanupHost();
    }
  });

  it.runIf(hasCapSysResource())("grows a published ext4 filesystem and df shows it", async () => {
    const id = "grow-ext4";
    const p = await stageAndPublish(id, "ext4", 64 * MiB);
    try {
      const before = await df(p.target);
      await growImage(p.image, 192 * MiB);
      const res = await h.node.nodeExpandVolume({
        volumeId: id,
        volumePath: p.target,
        capacityRange: { requiredBytes: BigInt(192 * MiB) },
      });
      expect(res.capacityBytes).toBe(BigInt(192 * MiB));
      expect((await df(p.target)).size - before.size).toBeGreaterThan(100 * MiB);
      expect(await readFile(join(p.target, "keep.txt"), "utf8")).toBe("still here");
      await teardown(id, p);
    } finally {
      await h.cleanupHost();
    }
  });

  it.skipIf(hasCapSysResource())(
    "explains that growing a mounted ext4 filesystem needs CAP_SYS_RESOURCE when the host withholds it",
    async () => {
      const id = "grow-ext4-nocap";
      const p = await stageAndPublish(id, "ext4", 64 * MiB);
      try {
        await growImage(p.image, 192 * MiB);
        const text = await expectCode(
          h.node.nodeExpandVolume({ volumeId: id, volumePath: p.target, capacityRange: { requiredBytes: BigInt(192 * MiB) } }),
          Code.Internal,
        );
        expect(text).toMatch(/CAP_SYS_RESOURCE/);
        // Offline growth needs no such capability: the next stage grows it.
        await teardown(id, p);
        await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: p.staging, volumeCapability: mountCapability("ext4") });
        expect((await df(p.staging)).size).toBeGreaterThan(170 * MiB);
        await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: p.staging });
      } finally {
        await h.cleanupHost();
      }
    },
  );
});

describe("expansion errors", () => {
  it("answers NOT_FOUND for a path that does not hold the volume", async () => {
    const id = "expand-nf";
    const other = "expand-other";
    const p = await stageAndPublish(id, "ext4", 64 * MiB);
    const q = await stageAndPublish(other, "ext4", 64 * MiB);
    try {
      await expectCode(h.node.nodeExpandVolume({ volumeId: id, volumePath: "some/path" }), Code.NotFound);
      await expectCode(h.node.nodeExpandVolume({ volumeId: id, volumePath: join(h.dir, "does-not-exist") }), Code.NotFound);
      await expectCode(h.node.nodeExpandVolume({ volumeId: id, volumePath: h.dir }), Code.NotFound);
      await expectCode(h.node.nodeExpandVolume({ volumeId: "no-such-volume", volumePath: p.target }), Code.NotFound);
      // The other volume's target, with and without this volume's staging path.
      await expectCode(h.node.nodeExpandVolume({ volumeId: id, volumePath: q.target }), Code.NotFound);
      await expectCode(h.node.nodeExpandVolume({ volumeId: other, volumePath: q.target, stagingTargetPath: p.staging }), Code.NotFound);
      await teardown(id, p);
      await teardown(other, q);
    } finally {
      await h.cleanupHost();
    }
  });

  it("answers UNAVAILABLE while the device is smaller than requested, and OUT_OF_RANGE when it exceeds the limit", async () => {
    const id = "expand-early";
    const p = await stageAndPublish(id, "ext4", 64 * MiB);
    try {
      const text = await expectCode(
        h.node.nodeExpandVolume({ volumeId: id, volumePath: p.target, capacityRange: { requiredBytes: BigInt(128 * MiB) } }),
        Code.Unavailable,
      );
      expect(text).toMatch(/has not reached this node/);
      await expectCode(
        h.node.nodeExpandVolume({
          volumeId: id,
          volumePath: p.target,
          capacityRange: { requiredBytes: BigInt(32 * MiB), limitBytes: BigInt(48 * MiB) },
        }),
        Code.OutOfRange,
      );
      // Already large enough: OK with the current size.
      expect(
        (await h.node.nodeExpandVolume({ volumeId: id, volumePath: p.staging, capacityRange: { requiredBytes: BigInt(32 * MiB) } }))
          .capacityBytes,
      ).toBe(BigInt(64 * MiB));
      await teardown(id, p);
    } finally {
      await h.cleanupHost();
    }
  });
});
