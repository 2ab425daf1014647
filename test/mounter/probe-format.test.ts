// @module-tag needs-root
import { open, writeFile } from "node:fs/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { classifySignatures, parseBlkidExport, probeDevice, readsAsZeros } from "../../src/mounter/probe.js";
import { makeFilesystem, mkfsCommand } from "../../src/mounter/format.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, cleanHost, newLoop, sh } from "./loop-fixture.js";
import { writeLvmLabel, writeMbrPartitionTable } from "./signatures.js";

let dir: string;
beforeAll(async () => {
  dir = await makeTestDir("mounter-probe");
});
afterEach(async () => {
  await cleanHost(dir);
});
afterAll(async () => {
  await cleanHost(dir);
  await removeTestDir(dir);
});

describe("blkid output classification", () => {
  it("parses export output and sorts signatures by what they mean for formatting", () => {
    const values = parseBlkidExport("DEVNAME=/dev/loop0\nUUID=abc\nTYPE=ext4\nUSAGE=filesystem\n");
    expect(classifySignatures(values)).toEqual({ kind: "filesystem", fsType: "ext4", uuid: "abc" });
    expect(classifySignatures(parseBlkidExport("PTTYPE=gpt\n"))?.kind).toBe("partitioned");
    // A partition table wins over a filesystem signature found beside it (hybrid images).
    expect(classifySignatures(parseBlkidExport("PTTYPE=dos\nTYPE=iso9660\nUSAGE=filesystem\n"))?.kind).toBe("partitioned");
    expect(classifySignatures(parseBlkidExport("TYPE=crypto_LUKS\nUSAGE=crypto\n"))?.kind).toBe("encrypted");
    expect(classifySignatures(parseBlkidExport("TYPE=LVM2_member\nUSAGE=raid\n"))?.kind).toBe("volume-member");
    expect(classifySignatures(parseBlkidExport("TYPE=linux_raid_member\nUSAGE=raid\n"))?.kind).toBe("volume-member");
    expect(classifySignatures(parseBlkidExport("TYPE=swap\nUSAGE=other\n"))).toEqual({ kind: "unknown", description: "a swap signature" });
    expect(classifySignatures(parseBlkidExport("DEVNAME=/dev/loop0\n"))).toBeUndefined();
  });
});

describe("probeDevice on real devices", () => {
  // `probed`: what probeDevice must report (at least); a filesystem names its type.
  const cases: { name: string; prepare: (file: string, device: string) => Promise<void>; probed: { kind: string; fsType?: string } }[] = [
    { name: "blank", prepare: async () => undefined, probed: { kind: "blank" } },
    { name: "ext4", prepare: async (_f, d) => void (await sh("mkfs.ext4", "-q", "-F", d)), probed: { kind: "filesystem", fsType: "ext4" } },
    { name: "xfs", prepare: async (_f, d) => void (await sh("mkfs.xfs", "-q", d)), probed: { kind: "filesystem", fsType: "xfs" } },
    { name: "dos partition table", prepare: (_f, d) => writeMbrPartitionTable(d), probed: { kind: "partitioned" } },
    { name: "LVM label", prepare: (_f, d) => writeLvmLabel(d), probed: { kind: "volume-member" } },
    {
      name: "LUKS",
      prepare: async (f, d) => {
        await writeFile(`${f}.key`, "k");
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
          d,
          `${f}.key`,
        );
      },
      probed: { kind: "encrypted" },
    },
    {
      name: "unrecognised data",
      prepare: async (_f, d) => {
        const h = await open(d, "r+");
        await h.write(Buffer.from("hello"), 0, 5, 123_456);
        await h.close();
      },
      probed: { kind: "unknown" },
    },
  ];

  it.each(cases)("classifies $name", async ({ name, prepare, probed }) => {
    const { file, device } = await newLoop(dir, `${name.replace(/\W+/g, "-")}.img`, 320 * MiB);
    try {
      await prepare(file, device);
      const content = await probeDevice(device);
      expect(content).toMatchObject(probed);
      expect(await readsAsZeros(device)).toBe(probed.kind === "blank");
    } finally {
      await sh("losetup", "-d", device);
    }
  });
});

describe("makeFilesystem", () => {
  it("uses lazy-init ext4 without reserved blocks, and xfs without -f", () => {
    expect(mkfsCommand("ext4", "/dev/x").args).toEqual([
      "-F",
      "-q",
      "-m",
      "0",
      "-E",
      "lazy_itable_init=1,lazy_journal_init=1",
      "--",
      "/dev/x",
    ]);
    expect(mkfsCommand("xfs", "/dev/x").args).not.toContain("-f");
  });

  it("creates ext4 with no reserved blocks, and mkfs.xfs itself refuses a device that holds a filesystem", async () => {
    const { device } = await newLoop(dir, "mkfs.img", 320 * MiB);
    try {
      await makeFilesystem(device, "ext4");
      expect(await sh("dumpe2fs", "-h", device)).toMatch(/^Reserved block count:\s+0$/m);
      await expect(makeFilesystem(device, "xfs")).rejects.toThrow(/existing filesystem|appears to contain/);
      expect((await probeDevice(device)).kind).toBe("filesystem");
      expect(await probeDevice(device)).toMatchObject({ fsType: "ext4" });
    } finally {
      await sh("losetup", "-d", device);
    }
  });
});
