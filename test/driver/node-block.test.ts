// @module-tag needs-root
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { VolumeUsage_Unit } from "../../src/gen/csi/v1/csi_pb.js";
import { blockDeviceNumber, formatDeviceNumber } from "../../src/mounter/device.js";
import { loopDevicesFor } from "../../src/mounter/loop.js";
import { MiB, blockCapability, expectCode, mountCapability, mountEntryAt, useNodeHarness } from "./node-harness.js";

const h = useNodeHarness("node-block");

async function readBytes(path: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, offset);
    return buffer;
  } finally {
    await handle.close();
  }
}

async function writeBytes(path: string, offset: number, data: Buffer): Promise<void> {
  const handle = await open(path, "r+");
  try {
    await handle.write(data, 0, data.length, offset);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

describe("block volumes", () => {
  it("stage, publish to two targets, read and write the raw device, expand, report stats and clean up", async () => {
    const id = "raw";
    const image = await h.createVolume(id, 32 * MiB);
    const staging = await h.path(id, "staging");
    const t1 = await h.path(id, "publish", "pod-a");
    const t2 = await h.path(id, "publish", "pod-b");
    const tro = await h.path(id, "publish", "pod-ro");
    const capability = blockCapability();
    try {
      for (let i = 0; i < 2; i++) await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
      const [loop] = await loopDevicesFor(image);
      expect(loop).toBeDefined();
      // No filesystem, no mount of the staging directory: the device is bound onto a file named after the volume.
      expect(await mountEntryAt(staging)).toBeUndefined();
      const stagedFile = join(staging, id);
      expect(formatDeviceNumber((await stat(stagedFile, { bigint: true })).rdev)).toBe(await blockDeviceNumber(loop ?? ""));

      for (const target of [t1, t2]) {
        for (let i = 0; i < 2; i++)
          await h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
        expect((await stat(target)).isBlockDevice()).toBe(true);
      }
      await h.node.nodePublishVolume({
        volumeId: id,
        stagingTargetPath: staging,
        targetPath: tro,
        volumeCapability: capability,
        readonly: true,
      });
      expect((await mountEntryAt(tro))?.options).toContain("ro");
      await expectCode(
        h.node.nodePublishVolume({
          volumeId: id,
          stagingTargetPath: staging,
          targetPath: t1,
          volumeCapability: capability,
          readonly: true,
        }),
        Code.AlreadyExists,
      );
      await expectCode(
        h.node.nodePublishVolume({ volumeId: id, stagingTargetPath: staging, targetPath: t1, volumeCapability: mountCapability() }),
        Code.FailedPrecondition,
      );
      await expectCode(
        h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability() }),
        Code.AlreadyExists,
      );

      const payload = Buffer.from("raw bytes through the first publication");
      await writeBytes(t1, 5 * MiB, payload);
      expect((await readBytes(t2, 5 * MiB, payload.length)).equals(payload)).toBe(true);
      expect((await readBytes(image, 5 * MiB, payload.length)).equals(payload)).toBe(true);

      const stats = await h.node.nodeGetVolumeStats({ volumeId: id, volumePath: t1, stagingTargetPath: staging });
      expect(stats.usage).toHaveLength(1);
      expect(stats.usage[0]?.unit).toBe(VolumeUsage_Unit.BYTES);
      expect(stats.usage[0]?.total).toBe(BigInt(32 * MiB));
      expect((await h.node.nodeGetVolumeStats({ volumeId: id, volumePath: staging })).usage[0]?.total).toBe(BigInt(32 * MiB));

      // The controller grew the file; the node makes the loop device see it and reports the size.
      const handle = await open(image, "r+");
      await handle.truncate(48 * MiB);
      await handle.close();
      const expanded = await h.node.nodeExpandVolume({
        volumeId: id,
        volumePath: t1,
        capacityRange: { requiredBytes: BigInt(48 * MiB) },
        volumeCapability: capability,
      });
      expect(expanded.capacityBytes).toBe(BigInt(48 * MiB));
      expect((await h.node.nodeGetVolumeStats({ volumeId: id, volumePath: t2 })).usage[0]?.total).toBe(BigInt(48 * MiB));
      await expectCode(
        h.node.nodeExpandVolume({ volumeId: id, volumePath: t1, volumeCapability: mountCapability() }),
        Code.InvalidArgument,
      );

      // Unstaging while published is refused and leaves the staging in place.
      expect(await expectCode(h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging }), Code.FailedPrecondition)).toMatch(
        /still published/,
      );
      expect((await stat(stagedFile)).isBlockDevice()).toBe(true);
      for (const target of [t1, t2, tro]) {
        for (let i = 0; i < 2; i++) await h.node.nodeUnpublishVolume({ volumeId: id, targetPath: target });
        await expect(stat(target)).rejects.toMatchObject({ code: "ENOENT" });
      }
      for (let i = 0; i < 2; i++) await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      await expect(stat(stagedFile)).rejects.toMatchObject({ code: "ENOENT" });
      expect(await loopDevicesFor(image)).toEqual([]);
      // The data written through the device is in the volume.
      expect((await readBytes(image, 5 * MiB, payload.length)).equals(payload)).toBe(true);
    } finally {
      await h.cleanupHost();
    }
  });

  it("is never formatted", async () => {
    const id = "raw-blank";
    const image = await h.createVolume(id, 16 * MiB);
    const staging = await h.path(id, "staging");
    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: blockCapability() });
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
    expect((await readBytes(image, 0, 16 * MiB)).every((b) => b === 0)).toBe(true);
  });
});
