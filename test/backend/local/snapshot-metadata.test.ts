// @module-tag needs-root
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdir, open, readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotImagePath, volumeImagePath } from "../../../src/backend/local/layout.js";
import { BlockMetadataType, PluginCapability_Service_Type } from "../../../src/gen/csi/v1/csi_pb.js";
import { attachLoop, detachLoop } from "../../../src/mounter/loop.js";
import { run } from "../../../src/util/exec.js";
import { cleanHost } from "../../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { Code, expectCode, MiB, mountCapability, startController, type ControllerHarness } from "../../driver/controller-harness.js";

// GetMetadataAllocated and GetMetadataDelta on real snapshot images, checked against the images' bytes:
// data written through a loop device over a volume, snapshots cut by the controller, and the ranges the
// service streams compared with a block-by-block reading of the images. Each data dir filesystem is its
// own loop-mounted image: ext4 (snapshots are sparse copies, so deltas compare contents) and xfs
// (snapshots are reflink copies, so deltas skip the extents two snapshots share).

const BLOCK = 4096;

interface Range {
  offset: number;
  length: number;
}

/** Merge 4 KiB block indexes into ranges. */
function blocksToRanges(blocks: readonly number[]): Range[] {
  const ranges: Range[] = [];
  for (const block of blocks) {
    const last = ranges.at(-1);
    if (last && last.offset + last.length === block * BLOCK) last.length += BLOCK;
    else ranges.push({ offset: block * BLOCK, length: BLOCK });
  }
  return ranges;
}

/** Indexes of the 4 KiB blocks of `size` bytes where `test(a, b)` holds (b reads zeros when absent or past its end). */
async function blocksWhere(size: number, a: string, b: string | undefined, test: (x: Buffer, y: Buffer) => boolean): Promise<number[]> {
  const chunk = 4 * MiB;
  const ha = await open(a, "r");
  const hb = b ? await open(b, "r") : undefined;
  const found: number[] = [];
  try {
    const x = Buffer.alloc(chunk);
    const y = Buffer.alloc(chunk);
    for (let at = 0; at < size; at += chunk) {
      x.fill(0);
      y.fill(0);
      await ha.read(x, 0, chunk, at);
      if (hb) await hb.read(y, 0, chunk, at);
      for (let i = 0; i < chunk && at + i < size; i += BLOCK) {
        if (test(x.subarray(i, i + BLOCK), y.subarray(i, i + BLOCK))) found.push((at + i) / BLOCK);
      }
    }
  } finally {
    await ha.close();
    await hb?.close();
  }
  return found;
}

const ZERO = Buffer.alloc(BLOCK);
/** The blocks of an image that hold anything but zeros. */
const nonZeroBlocks = (size: number, image: string) => blocksWhere(size, image, undefined, (x) => !x.equals(ZERO));
/** The blocks where two images differ (the shorter read as zeros past its end). */
const differingBlocks = (size: number, a: string, b: string) => blocksWhere(size, a, b, (x, y) => !x.equals(y));

/** xfs_io processes this process started that are still running. */
function ourFiemapTools(): string[] {
  const out = execFileSync("ps", ["-o", "pid=,args=", "--ppid", String(process.pid)], { encoding: "utf8" }).trim();
  return out === "" ? [] : out.split("\n").filter((l) => l.includes("xfs_io"));
}

for (const fsType of ["ext4", "xfs"] as const) {
  describe(`on an ${fsType} data dir`, () => {
    let dir: string;
    let h: ControllerHarness | undefined;
    let dataDevice: string | undefined;
    let volumeDevice: string | undefined;

    beforeAll(async () => {
      dir = await makeTestDir(`snapmeta-${fsType}`);
      const backing = join(dir, "data.img");
      await (await open(backing, "w")).close();
      await run("truncate", ["-s", "2G", backing]);
      dataDevice = await attachLoop(backing);
      await run(`mkfs.${fsType}`, fsType === "xfs" ? ["-q", "-f", "-m", "reflink=1", dataDevice] : ["-q", "-F", dataDevice]);
      await mkdir(join(dir, "data"));
      await run("mount", [dataDevice, join(dir, "data")]);
      h = await startController(dir, ["--alpha-features", "snapshot-metadata"]);
    });
    afterAll(async () => {
      try {
        await h?.stop();
        if (volumeDevice) await detachLoop(volumeDevice).catch(() => undefined);
        await run("umount", [join(dir, "data")]).catch(() => undefined);
        if (dataDevice) await detachLoop(dataDevice).catch(() => undefined);
      } finally {
        await cleanHost(dir);
        await removeTestDir(dir);
      }
    });

    const controller = () => (h as ControllerHarness).clients.controller;
    const metadata = () => (h as ControllerHarness).clients.snapshotMetadata;
    const size = 64 * MiB;
    let volumeId = "";
    let first = "";
    let second = "";

    /** Write through the volume's loop device (as a filesystem on the node would), then flush it. */
    async function writeThroughDevice(writes: readonly { offset: number; data: Buffer }[]): Promise<void> {
      const handle = await open(volumeDevice as string, "r+");
      try {
        for (const { offset, data } of writes) await handle.write(data, 0, data.length, offset);
        await handle.sync();
      } finally {
        await handle.close();
      }
    }

    async function allocated(snapshotId: string, request: { startingOffset?: bigint; maxResults?: number } = {}) {
      const messages = [];
      for await (const m of metadata().getMetadataAllocated({ snapshotId, ...request })) messages.push(m);
      return messages;
    }
    async function delta(baseSnapshotId: string, targetSnapshotId: string, request: { startingOffset?: bigint; maxResults?: number } = {}) {
      const messages = [];
      for await (const m of metadata().getMetadataDelta({ baseSnapshotId, targetSnapshotId, ...request })) messages.push(m);
      return messages;
    }
    const rangesOf = (messages: { blockMetadata: { byteOffset: bigint; sizeBytes: bigint }[] }[]): Range[] =>
      messages.flatMap((m) => m.blockMetadata.map((b) => ({ offset: Number(b.byteOffset), length: Number(b.sizeBytes) })));

    it("advertises SNAPSHOT_METADATA_SERVICE", async () => {
      const { capabilities } = await (h as ControllerHarness).clients.identity.getPluginCapabilities({});
      const services = capabilities.map((c) => (c.type.case === "service" ? c.type.value.type : undefined));
      expect(services).toContain(PluginCapability_Service_Type.SNAPSHOT_METADATA_SERVICE);
      // Probe covers the tool the service reads extent maps with.
      const report = await (h as ControllerHarness).plugin.readiness.report(new AbortController().signal);
      expect(report.checks).toContainEqual(expect.objectContaining({ name: "snapshot metadata tools", state: "ready" }));
    });

    it("reports exactly the blocks of a snapshot that hold data", async () => {
      const { volume } = await controller().createVolume({
        name: `meta-${fsType}`,
        volumeCapabilities: [mountCapability()],
        capacityRange: { requiredBytes: BigInt(size) },
      });
      volumeId = volume?.volumeId ?? "";
      volumeDevice = await attachLoop(volumeImagePath(h?.dataDir ?? "", volumeId));
      await writeThroughDevice([
        { offset: 0, data: randomBytes(8 * BLOCK) },
        { offset: 1 * MiB, data: randomBytes(BLOCK) },
        { offset: 5 * MiB + 3 * BLOCK, data: randomBytes(40 * BLOCK) },
        { offset: 20 * MiB, data: randomBytes(2 * MiB) },
        { offset: 40 * MiB + 7 * BLOCK, data: randomBytes(BLOCK) },
        { offset: size - 2 * BLOCK, data: randomBytes(2 * BLOCK) },
      ]);
      const { snapshot } = await controller().createSnapshot({ name: `meta-${fsType}-1`, sourceVolumeId: volumeId });
      first = snapshot?.snapshotId ?? "";

      const messages = await allocated(first);
      for (const m of messages) {
        expect(m.blockMetadataType).toBe(BlockMetadataType.VARIABLE_LENGTH);
        expect(m.volumeCapacityBytes).toBe(BigInt(size));
      }
      const image = snapshotImagePath(h?.dataDir ?? "", first);
      expect(rangesOf(messages)).toEqual(blocksToRanges(await nonZeroBlocks(size, image)));
    });

    it("reports exactly the blocks that differ between two snapshots of the volume", async () => {
      const same = (await readFile(snapshotImagePath(h?.dataDir ?? "", first))).subarray(20 * MiB, 20 * MiB + BLOCK);
      await writeThroughDevice([
        { offset: 2 * BLOCK, data: randomBytes(BLOCK) }, // changed inside written data
        { offset: 5 * MiB, data: randomBytes(5 * BLOCK) }, // overlaps the start of a written range
        { offset: 12 * MiB, data: randomBytes(3 * BLOCK) }, // new data where there was none
        { offset: 20 * MiB + MiB, data: Buffer.alloc(4 * BLOCK) }, // data zeroed
        { offset: 20 * MiB, data: same }, // rewritten with the very same bytes: not a change
        { offset: size - BLOCK, data: randomBytes(100) }, // a partial block
      ]);
      const { snapshot } = await controller().createSnapshot({ name: `meta-${fsType}-2`, sourceVolumeId: volumeId });
      second = snapshot?.snapshotId ?? "";

      const messages = await delta(first, second);
      for (const m of messages) {
        expect(m.blockMetadataType).toBe(BlockMetadataType.VARIABLE_LENGTH);
        expect(m.volumeCapacityBytes).toBe(BigInt(size));
      }
      const dataDir = h?.dataDir ?? "";
      const expected = blocksToRanges(await differingBlocks(size, snapshotImagePath(dataDir, first), snapshotImagePath(dataDir, second)));
      expect(expected.length).toBeGreaterThan(3);
      expect(rangesOf(messages)).toEqual(expected);
      expect(rangesOf(messages)).not.toContainEqual(expect.objectContaining({ offset: 20 * MiB }));
      // On xfs the two snapshots are reflink copies: most of their extents are shared (FIEMAP_EXTENT_SHARED),
      // which is what lets the delta skip them unread.
      const map = (await run("xfs_io", ["-r", "-c", "fiemap -v", snapshotImagePath(dataDir, second)])).stdout;
      const shared = [...map.matchAll(/\s0x([0-9a-f]+)\s*$/gm)].some((m) => (Number.parseInt(m[1] ?? "0", 16) & 0x2000) !== 0);
      expect(shared).toBe(fsType === "xfs");
    });

    it("reports what changed after the volume grew, the base read as zeros past its end", async () => {
      await controller().controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(96 * MiB) } });
      await writeThroughDevice([
        { offset: 80 * MiB, data: randomBytes(3 * BLOCK) },
        { offset: 3 * MiB, data: randomBytes(BLOCK) },
      ]);
      const { snapshot } = await controller().createSnapshot({ name: `meta-${fsType}-3`, sourceVolumeId: volumeId });
      const third = snapshot?.snapshotId ?? "";
      const messages = await delta(second, third);
      expect(messages[0]?.volumeCapacityBytes).toBe(BigInt(96 * MiB));
      const dataDir = h?.dataDir ?? "";
      expect(rangesOf(messages)).toEqual(
        blocksToRanges(await differingBlocks(96 * MiB, snapshotImagePath(dataDir, second), snapshotImagePath(dataDir, third))),
      );
      expect(rangesOf(messages)).toEqual([
        { offset: 3 * MiB, length: BLOCK },
        { offset: 80 * MiB, length: 3 * BLOCK },
      ]);
    });

    it("pages by max_results and continues from starting_offset", async () => {
      const whole = rangesOf(await allocated(first));
      const paged = await allocated(first, { maxResults: 1 });
      expect(paged.every((m) => m.blockMetadata.length === 1)).toBe(true);
      expect(rangesOf(paged)).toEqual(whole);
      const two = await delta(first, second, { maxResults: 2 });
      expect(two.every((m) => m.blockMetadata.length <= 2)).toBe(true);
      expect(rangesOf(two)).toEqual(rangesOf(await delta(first, second)));

      // Continue from inside the range at 20 MiB: it resumes at that byte, and what follows is unchanged.
      const resume = 21 * MiB + 123;
      const rest = rangesOf(await allocated(first, { startingOffset: BigInt(resume) }));
      const index = whole.findIndex((r) => r.offset + r.length > resume);
      const cut = whole[index] as Range;
      expect(rest[0]).toEqual({ offset: resume, length: cut.offset + cut.length - resume });
      expect(rest.slice(1)).toEqual(whole.slice(index + 1));
      const deltaWhole = rangesOf(await delta(first, second));
      const deltaRest = rangesOf(await delta(first, second, { startingOffset: BigInt(12 * MiB) }));
      expect(deltaRest).toEqual(deltaWhole.filter((r) => r.offset >= 12 * MiB));

      // At the very end: nothing left, but the stream still says the capacity.
      const atEnd = await allocated(first, { startingOffset: BigInt(size) });
      expect(atEnd).toHaveLength(1);
      expect(atEnd[0]?.blockMetadata).toEqual([]);
      expect(atEnd[0]?.volumeCapacityBytes).toBe(BigInt(size));
    });

    it("answers the spec's codes", async () => {
      await expectCode(allocated(""), Code.InvalidArgument, /snapshot_id is required/);
      await expectCode(allocated("snap-00000000-0000-0000-0000-000000000000"), Code.NotFound, /does not exist/);
      await expectCode(allocated("../../etc/passwd"), Code.NotFound);
      await expectCode(allocated(first, { startingOffset: -1n }), Code.OutOfRange, /must not be negative/);
      await expectCode(allocated(first, { startingOffset: BigInt(size + 1) }), Code.OutOfRange, /past the end of the volume/);
      await expectCode(allocated(first, { maxResults: -1 }), Code.InvalidArgument, /max_results/);
      await expectCode(delta(first, ""), Code.InvalidArgument, /target_snapshot_id is required/);
      await expectCode(delta(first, "snap-00000000-0000-0000-0000-000000000000"), Code.NotFound, /target snapshot/);
      await expectCode(delta(second, first), Code.InvalidArgument, /cut before/);
      await expectCode(delta(first, first), Code.InvalidArgument, /both/);
      const { volume: other } = await controller().createVolume({
        name: `meta-${fsType}-other`,
        volumeCapabilities: [mountCapability()],
        capacityRange: { requiredBytes: BigInt(8 * MiB) },
      });
      const { snapshot: foreign } = await controller().createSnapshot({
        name: `meta-${fsType}-other-snap`,
        sourceVolumeId: other?.volumeId ?? "",
      });
      await expectCode(delta(first, foreign?.snapshotId ?? ""), Code.InvalidArgument, /different volumes/);
    });

    it("stops reading the images when the caller cancels mid-stream", async () => {
      const descriptors = (await readdir("/proc/self/fd")).length;
      const abort = new AbortController();
      let received = 0;
      await expectCode(
        (async () => {
          for await (const _m of metadata().getMetadataDelta(
            { baseSnapshotId: first, targetSnapshotId: second, maxResults: 1 },
            { signal: abort.signal },
          )) {
            if (++received === 2) abort.abort();
          }
        })(),
        Code.Canceled,
      );
      expect(received).toBe(2);
      await expect.poll(ourFiemapTools, { timeout: 5_000 }).toEqual([]);
      // The images are closed again.
      await expect.poll(async () => (await readdir("/proc/self/fd")).length, { timeout: 5_000 }).toBeLessThanOrEqual(descriptors);
    });

    it("keeps streaming a snapshot deleted meanwhile, from the image it opened", async () => {
      const stream = metadata().getMetadataAllocated({ snapshotId: first, maxResults: 1 })[Symbol.asyncIterator]();
      const head = await stream.next();
      expect(head.done).toBe(false);
      const whole: Range[] = [];
      if (!head.done) whole.push(...rangesOf([head.value]));
      await controller().deleteSnapshot({ snapshotId: first });
      for (let next = await stream.next(); !next.done; next = await stream.next()) whole.push(...rangesOf([next.value]));
      expect(whole.length).toBeGreaterThan(3);
      await expectCode(allocated(first), Code.NotFound);
    });
  });
}

describe("without --alpha-features snapshot-metadata", () => {
  let dir: string;
  let h: ControllerHarness | undefined;
  beforeAll(async () => {
    dir = await makeTestDir("snapmeta-off");
    h = await startController(dir, ["--alpha-features", "get-snapshot"]);
  });
  afterAll(async () => {
    await h?.stop();
    await removeTestDir(dir);
  });

  it("neither advertises nor serves the service", async () => {
    const { capabilities } = await (h as ControllerHarness).clients.identity.getPluginCapabilities({});
    const services = capabilities.map((c) => (c.type.case === "service" ? c.type.value.type : undefined));
    expect(services).not.toContain(PluginCapability_Service_Type.SNAPSHOT_METADATA_SERVICE);
    const stream = (h as ControllerHarness).clients.snapshotMetadata.getMetadataAllocated({ snapshotId: "snap-x" });
    await expectCode(
      (async () => {
        for await (const _m of stream) {
          // an answer would be a failure; UNIMPLEMENTED ends the stream
        }
      })(),
      Code.Unimplemented,
    );
    const report = await (h as ControllerHarness).plugin.readiness.report(new AbortController().signal);
    expect(report.checks.map((c) => c.name)).not.toContain("snapshot metadata tools");
  });
});

describe("on a data dir without FIEMAP (tmpfs)", () => {
  let dir: string;
  let h: ControllerHarness | undefined;
  beforeAll(async () => {
    dir = await makeTestDir("snapmeta-tmpfs");
    await mkdir(join(dir, "data"));
    await run("mount", ["-t", "tmpfs", "-o", "size=256m", "tmpfs", join(dir, "data")]);
    h = await startController(dir, ["--alpha-features", "snapshot-metadata"]);
  });
  afterAll(async () => {
    try {
      await h?.stop();
      await run("umount", [join(dir, "data")]).catch(() => undefined);
    } finally {
      await cleanHost(dir);
      await removeTestDir(dir);
    }
  });

  it("counts the whole image as allocated and still reports exactly the blocks that changed", async () => {
    const c = (h as ControllerHarness).clients;
    const dataDir = (h as ControllerHarness).dataDir;
    const size = 16 * MiB;
    const { volume } = await c.controller.createVolume({
      name: "tmpfs-vol",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(size) },
    });
    const image = volumeImagePath(dataDir, volume?.volumeId ?? "");
    const write = async (offset: number, data: Buffer) => {
      const handle = await open(image, "r+");
      try {
        await handle.write(data, 0, data.length, offset);
      } finally {
        await handle.close();
      }
    };
    await write(MiB, randomBytes(4 * BLOCK));
    const base =
      (await c.controller.createSnapshot({ name: "tmpfs-1", sourceVolumeId: volume?.volumeId ?? "" })).snapshot?.snapshotId ?? "";
    await write(MiB + BLOCK, randomBytes(BLOCK));
    await write(9 * MiB, randomBytes(2 * BLOCK));
    const target =
      (await c.controller.createSnapshot({ name: "tmpfs-2", sourceVolumeId: volume?.volumeId ?? "" })).snapshot?.snapshotId ?? "";

    const ranges = async (stream: AsyncIterable<{ blockMetadata: { byteOffset: bigint; sizeBytes: bigint }[] }>) => {
      const out: Range[] = [];
      for await (const m of stream)
        for (const b of m.blockMetadata) out.push({ offset: Number(b.byteOffset), length: Number(b.sizeBytes) });
      return out;
    };
    expect(await ranges(c.snapshotMetadata.getMetadataAllocated({ snapshotId: base }))).toEqual([{ offset: 0, length: size }]);
    expect(await ranges(c.snapshotMetadata.getMetadataAllocated({ snapshotId: base, startingOffset: BigInt(size - 100) }))).toEqual([
      { offset: size - 100, length: 100 },
    ]);
    const changed = await ranges(c.snapshotMetadata.getMetadataDelta({ baseSnapshotId: base, targetSnapshotId: target }));
    expect(changed).toEqual(
      blocksToRanges(await differingBlocks(size, snapshotImagePath(dataDir, base), snapshotImagePath(dataDir, target))),
    );
    expect(changed).toEqual([
      { offset: MiB + BLOCK, length: BLOCK },
      { offset: 9 * MiB, length: 2 * BLOCK },
    ]);
  });
});
