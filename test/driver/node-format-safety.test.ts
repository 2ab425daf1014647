// @module-tag needs-root
import { createHash } from "node:crypto";
import { open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { loopDevicesFor } from "../../src/mounter/loop.js";
import { NO_FORMAT_KEYS } from "../../src/driver/node-request.js";
import { MiB, df, expectCode, mountCapability, mountEntryAt, sh, useNodeHarness } from "./node-harness.js";
import { writeLvmLabel, writeMbrPartitionTable } from "../mounter/signatures.js";

const h = useNodeHarness("node-format");

async function sha256(file: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(file))
    .digest("hex");
}

async function writeAt(file: string, offset: number, data: Buffer): Promise<void> {
  const handle = await open(file, "r+");
  try {
    await handle.write(data, 0, data.length, offset);
  } finally {
    await handle.close();
  }
}

describe("a device that holds anything is never formatted", () => {
  const refusals: { name: string; prepare: (image: string) => Promise<void>; message: RegExp }[] = [
    { name: "an MBR partition table", prepare: writeMbrPartitionTable, message: /dos partition table/ },
    { name: "an LVM physical volume", prepare: writeLvmLabel, message: /LVM physical volume/ },
    {
      name: "a LUKS container",
      prepare: async (image) => {
        const key = `${image}.key`;
        await writeFile(key, "not-a-real-secret");
        await sh(
          "cryptsetup",
          "luksFormat",
          "--batch-mode",
          "--type",
          "luks2",
          "--pbkdf",
          "pbkdf2",
          "--pbkdf-force-iterations",
          "1000",
          image,
          key,
        );
      },
      message: /encrypted container \(crypto_LUKS\)/,
    },
    { name: "a swap signature", prepare: async (image) => void (await sh("mkswap", image)), message: /swap signature/ },
    {
      name: "data without a signature",
      prepare: (image) => writeAt(image, 4096, Buffer.from("precious bytes that no probe recognises")),
      message: /without a recognised signature/,
    },
    {
      name: "data only at the end of the device",
      prepare: (image) => writeAt(image, 64 * MiB - 512, Buffer.from("trailing metadata")),
      message: /without a recognised signature/,
    },
  ];

  it.each(refusals)("refuses $name with FAILED_PRECONDITION and leaves every byte as it was", async ({ name, prepare, message }) => {
    const id = `refuse-${name.replace(/[^a-z]+/g, "-").replace(/-+$/, "")}`;
    const image = await h.createVolume(id, 64 * MiB);
    await prepare(image);
    const before = await sha256(image);
    const staging = await h.path(id, "staging");
    const text = await expectCode(
      h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability() }),
      Code.FailedPrecondition,
    );
    expect(text).toMatch(message);
    expect(text).toMatch(/refusing to format/);
    expect(await sha256(image)).toBe(before);
    expect(await mountEntryAt(staging)).toBeUndefined();
    // The loop device attached for the failed stage was given back.
    expect(await loopDevicesFor(image)).toEqual([]);
  });

  it("refuses a filesystem of another type than requested, and mounts it when no type is requested", async () => {
    const id = "other-fs";
    const image = await h.createVolume(id, 320 * MiB);
    await sh("mkfs.xfs", "-q", image);
    const before = await sha256(image);
    const staging = await h.path(id, "staging");
    const text = await expectCode(
      h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("ext4") }),
      Code.FailedPrecondition,
    );
    expect(text).toMatch(/already holds a xfs filesystem but ext4 was requested/);
    expect(await sha256(image)).toBe(before);
    expect(await loopDevicesFor(image)).toEqual([]);

    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability() });
    expect((await mountEntryAt(staging))?.fsType).toBe("xfs");
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
  });

  it("refuses to create xfs on a volume smaller than xfs allows, and a filesystem type it cannot create", async () => {
    const id = "small-xfs";
    await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    expect(
      await expectCode(
        h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("xfs") }),
        Code.FailedPrecondition,
      ),
    ).toMatch(/300 MiB/);
    expect(
      await expectCode(
        h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("btrfs") }),
        Code.FailedPrecondition,
      ),
    ).toMatch(/cannot create btrfs/);
  });
});

describe("no-format volume context keys", () => {
  it.each(NO_FORMAT_KEYS)("%s: a blank volume is refused, an existing filesystem is mounted as is", async (key) => {
    const id = `noformat-${NO_FORMAT_KEYS.indexOf(key)}`;
    const image = await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    const volumeContext = { [key]: "true" };
    const text = await expectCode(
      h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability(), volumeContext }),
      Code.FailedPrecondition,
    );
    expect(text).toContain(key);
    expect((await readFile(image)).every((b) => b === 0)).toBe(true);
    expect(await loopDevicesFor(image)).toEqual([]);

    await sh("mkfs.ext3", "-q", "-F", image);
    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability(), volumeContext });
    expect((await mountEntryAt(staging))?.fsType).toBe("ext3");
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
  });

  it("formats when the key explicitly says false", async () => {
    const id = "noformat-false";
    await h.createVolume(id, 64 * MiB);
    const staging = await h.path(id, "staging");
    await h.node.nodeStageVolume({
      volumeId: id,
      stagingTargetPath: staging,
      volumeCapability: mountCapability(),
      volumeContext: { [NO_FORMAT_KEYS[0]]: "false" },
    });
    expect((await mountEntryAt(staging))?.fsType).toBe("ext4");
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
  });
});

describe("a volume larger than its filesystem (restore or clone into a bigger volume)", () => {
  it.each([
    { fsType: "ext4", from: 64 * MiB, to: 160 * MiB },
    { fsType: "xfs", from: 320 * MiB, to: 512 * MiB },
  ])("grows $fsType to the device on stage and keeps the data", async ({ fsType, from, to }) => {
    const id = `restore-${fsType}`;
    const image = await h.createVolume(id, from);
    const staging = await h.path(id, "staging");
    const capability = mountCapability(fsType);
    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
    await writeFile(join(staging, "data.bin"), Buffer.alloc(MiB, 7));
    const small = await df(staging);
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });

    const handle = await open(image, "r+");
    await handle.truncate(to);
    await handle.close();

    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
    const big = await df(staging);
    expect(big.size).toBeGreaterThan(small.size + (to - from) * 0.9);
    expect((await readFile(join(staging, "data.bin"))).equals(Buffer.alloc(MiB, 7))).toBe(true);
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
  });

  it("finishes the growth on a repeated stage when the device grew while staged (xfs)", async () => {
    const id = "restage-grow";
    const image = await h.createVolume(id, 320 * MiB);
    const staging = await h.path(id, "staging");
    const capability = mountCapability("xfs");
    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
    const before = await df(staging);
    const handle = await open(image, "r+");
    await handle.truncate(512 * MiB);
    await handle.close();
    await sh("losetup", "--set-capacity", (await loopDevicesFor(image))[0] ?? "");
    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: capability });
    expect((await df(staging)).size - before.size).toBeGreaterThan(150 * MiB);
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
  });
});
