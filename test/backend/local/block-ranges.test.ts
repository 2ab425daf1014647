import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BlockRange } from "../../../src/backend/backend.js";
import { allocatedRanges, changedRanges } from "../../../src/backend/local/block-ranges.js";
import { type DataExtent, parseFiemapLine } from "../../../src/backend/local/image-extents.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";

// The range arithmetic behind SnapshotMetadata, on extent maps given by hand (the host test
// checks the whole path on real images); and the reading of xfs_io's fiemap output.

const K = 1024;

async function* extents(...list: DataExtent[]): AsyncGenerator<DataExtent> {
  yield* list;
}

async function all(ranges: AsyncIterable<BlockRange>): Promise<BlockRange[]> {
  const out: BlockRange[] = [];
  for await (const r of ranges) out.push(r);
  return out;
}

describe("parseFiemapLine", () => {
  it("reads data extents in bytes, and skips headers, holes and unwritten extents", () => {
    expect(parseFiemapLine("/proc/1/fd/20:")).toBeUndefined();
    expect(parseFiemapLine(" EXT: FILE-OFFSET      BLOCK-RANGE          TOTAL FLAGS")).toBeUndefined();
    expect(parseFiemapLine("   0: [0..79]:         hole                    80")).toBeUndefined();
    expect(parseFiemapLine("   1: [80..103]:       227999824..227999847    24   0x0")).toEqual({
      offset: 80 * 512,
      length: 24 * 512,
      physical: 227999824 * 512,
    });
    expect(parseFiemapLine("   3: [8000..8007]:    228007744..228007751     8   0x2001")).toEqual({
      offset: 8000 * 512,
      length: 8 * 512,
      physical: 228007744 * 512,
    });
    // unwritten (preallocated) extents read as zeros
    expect(parseFiemapLine("   5: [16384..18431]:  227993600..227995647  2048 0x801")).toBeUndefined();
    // delayed allocation: data, but no place on disk to compare
    expect(parseFiemapLine("   2: [8..15]:         0..7                     8   0x5")).toEqual({
      offset: 4096,
      length: 4096,
      physical: undefined,
    });
  });

  it("fails loudly on a line it does not understand", () => {
    expect(() => parseFiemapLine("   1: something else entirely")).toThrow(/unexpected xfs_io fiemap output/);
  });
});

describe("allocatedRanges", () => {
  it("clips to [from, end) and merges extents that touch", async () => {
    const map = extents(
      { offset: 0, length: 8 * K, physical: 100 * K },
      { offset: 8 * K, length: 4 * K, physical: 900 * K },
      { offset: 64 * K, length: 16 * K, physical: 0 },
      { offset: 128 * K, length: 64 * K, physical: 500 * K },
    );
    expect(await all(allocatedRanges(map, 4 * K, 160 * K))).toEqual([
      { offset: 4 * K, length: 8 * K },
      { offset: 64 * K, length: 16 * K },
      { offset: 128 * K, length: 32 * K },
    ]);
  });
});

describe("changedRanges", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTestDir("block-ranges");
  });
  afterAll(async () => {
    await removeTestDir(dir);
  });

  /** Two 64 KiB files where blocks 1, 2, 5 and 9 differ. */
  async function images() {
    const base = Buffer.alloc(64 * K, 7);
    const target = Buffer.from(base);
    for (const block of [1, 2, 5, 9]) target.fill(9, block * 4 * K, block * 4 * K + 100);
    await writeFile(join(dir, "base"), base);
    await writeFile(join(dir, "target"), target);
    return { base: await open(join(dir, "base"), "r+"), target: await open(join(dir, "target")) };
  }

  const never = () => new AbortController().signal;

  it("compares every range either image holds data in, and reports differing blocks merged", async () => {
    const files = await images();
    try {
      const whole = (physical: number): DataExtent => ({ offset: 0, length: 64 * K, physical });
      const ranges = await all(changedRanges(files, { base: extents(whole(0)), target: extents(whole(1 << 20)) }, 0, 64 * K, never()));
      expect(ranges).toEqual([
        { offset: 4 * K, length: 8 * K },
        { offset: 20 * K, length: 4 * K },
        { offset: 36 * K, length: 4 * K },
      ]);
      // From the middle of a changed range on: the first is cut at starting_offset.
      const tail = await all(changedRanges(files, { base: extents(whole(0)), target: extents(whole(1 << 20)) }, 6 * K, 64 * K, never()));
      expect(tail).toEqual([
        { offset: 6 * K, length: 6 * K },
        { offset: 20 * K, length: 4 * K },
        { offset: 36 * K, length: 4 * K },
      ]);
    } finally {
      await files.base.close();
      await files.target.close();
    }
  });

  it("does not read ranges both images share on disk (a reflink copy)", async () => {
    const files = await images();
    try {
      // Blocks 0-3 are mapped to the same place in both maps: trusted as unchanged without reading,
      // even though the files (made up for this test) differ there.
      const base = extents({ offset: 0, length: 64 * K, physical: 1 << 20 });
      const target = extents({ offset: 0, length: 16 * K, physical: 1 << 20 }, { offset: 16 * K, length: 48 * K, physical: 8 << 20 });
      expect(await all(changedRanges(files, { base, target }, 0, 64 * K, never()))).toEqual([
        { offset: 20 * K, length: 4 * K },
        { offset: 36 * K, length: 4 * K },
      ]);
    } finally {
      await files.base.close();
      await files.target.close();
    }
  });

  it("skips ranges where neither image holds data, and reads past a shorter base as zeros", async () => {
    const files = await images();
    await files.base.truncate(16 * K); // the volume grew between the two snapshots
    try {
      // The maps say the base holds nothing and the target holds blocks 8-11: blocks 1 and 2, which differ
      // in the files, are outside both maps and not read; blocks 8-11 are compared with zeros past the base's end.
      const target = extents({ offset: 32 * K, length: 16 * K, physical: 0 });
      expect(await all(changedRanges(files, { base: extents(), target }, 0, 64 * K, never()))).toEqual([
        { offset: 32 * K, length: 16 * K },
      ]);
    } finally {
      await files.base.close();
      await files.target.close();
    }
  });

  it("stops when the call is cancelled", async () => {
    const files = await images();
    try {
      const abort = new AbortController();
      abort.abort(new Error("cancelled"));
      const whole = (physical: number): DataExtent => ({ offset: 0, length: 64 * K, physical });
      await expect(
        all(changedRanges(files, { base: extents(whole(0)), target: extents(whole(1)) }, 0, 64 * K, abort.signal)),
      ).rejects.toThrow("cancelled");
    } finally {
      await files.base.close();
      await files.target.close();
    }
  });
});
