import type { FileHandle } from "node:fs/promises";
import type { BlockRange } from "../backend.js";
import type { DataExtent } from "./image-extents.js";

/**
 * The ranges the SnapshotMetadata service reports for local snapshot images,
 * computed from their extent maps (image-extents.ts) as they are pulled:
 * memory stays the same whatever the image's size or fragmentation.
 */

/** Granularity of content comparison: the block size of ext4 and xfs data dirs. */
export const COMPARE_BLOCK_BYTES = 4096;
const READ_CHUNK_BYTES = 1024 * 1024;

/** Merges ranges that touch, as they pass. */
async function* merged(ranges: AsyncIterable<BlockRange>): AsyncGenerator<BlockRange> {
  let pending: BlockRange | undefined;
  for await (const range of ranges) {
    if (pending && pending.offset + pending.length >= range.offset) {
      const end = Math.max(pending.offset + pending.length, range.offset + range.length);
      pending = { offset: pending.offset, length: end - pending.offset };
      continue;
    }
    if (pending) yield pending;
    pending = range;
  }
  if (pending) yield pending;
}

async function* clipped(extents: AsyncIterable<BlockRange>, from: number, end: number): AsyncGenerator<BlockRange> {
  for await (const extent of extents) {
    const start = Math.max(extent.offset, from);
    const stop = Math.min(extent.offset + extent.length, end);
    if (extent.offset >= end) return;
    if (stop > start) yield { offset: start, length: stop - start };
  }
}

/** The data ranges of an image within [from, end), adjacent extents merged. */
export function allocatedRanges(extents: AsyncIterable<DataExtent>, from: number, end: number): AsyncIterable<BlockRange> {
  return merged(clipped(extents, from, end));
}

/** Walks one extent map alongside another. */
class ExtentCursor {
  readonly #iterator: AsyncIterator<DataExtent>;
  current: DataExtent | undefined;

  constructor(extents: AsyncIterable<DataExtent>) {
    this.#iterator = extents[Symbol.asyncIterator]();
  }

  /** Moves to the first extent that ends after `position` (none when the map is exhausted). */
  async skipTo(position: number): Promise<void> {
    while (this.current === undefined || this.current.offset + this.current.length <= position) {
      const next = await this.#iterator.next();
      if (next.done) {
        this.current = undefined;
        return;
      }
      this.current = next.value;
    }
  }

  async close(): Promise<void> {
    await this.#iterator.return?.();
  }
}

/**
 * Ranges within [from, end) where either image holds data, except where both
 * map the range to the same place on disk (a reflink copy shares it, so its
 * bytes are the same). Where neither holds data both read as zeros.
 */
async function* candidateRanges(
  base: AsyncIterable<DataExtent>,
  target: AsyncIterable<DataExtent>,
  from: number,
  end: number,
): AsyncGenerator<BlockRange> {
  const a = new ExtentCursor(base);
  const b = new ExtentCursor(target);
  try {
    let position = from;
    while (position < end) {
      await a.skipTo(position);
      await b.skipTo(position);
      const ea = a.current;
      const eb = b.current;
      const startA = ea ? Math.max(ea.offset, position) : Number.POSITIVE_INFINITY;
      const startB = eb ? Math.max(eb.offset, position) : Number.POSITIVE_INFINITY;
      const start = Math.min(startA, startB);
      if (start >= end) return;
      const endA = ea ? ea.offset + ea.length : Number.POSITIVE_INFINITY;
      const endB = eb ? eb.offset + eb.length : Number.POSITIVE_INFINITY;
      let stop: number;
      let shared = false;
      if (ea && eb && startA === start && startB === start) {
        stop = Math.min(endA, endB);
        shared = ea.physical !== undefined && eb.physical !== undefined && ea.physical - ea.offset === eb.physical - eb.offset;
      } else if (startA === start) {
        stop = Math.min(endA, startB);
      } else {
        stop = Math.min(endB, startA);
      }
      stop = Math.min(stop, end);
      if (!shared) yield { offset: start, length: stop - start };
      position = stop;
    }
  } finally {
    await a.close();
    await b.close();
  }
}

/** Candidates widened to whole comparison blocks within [0, end). */
async function* blockAligned(ranges: AsyncIterable<BlockRange>, end: number): AsyncGenerator<BlockRange> {
  for await (const range of ranges) {
    const start = Math.floor(range.offset / COMPARE_BLOCK_BYTES) * COMPARE_BLOCK_BYTES;
    const stop = Math.min(end, Math.ceil((range.offset + range.length) / COMPARE_BLOCK_BYTES) * COMPARE_BLOCK_BYTES);
    yield { offset: start, length: stop - start };
  }
}

/** Fill `buffer` from `position`; what lies past the end of the file reads as zeros. */
async function readFully(handle: FileHandle, buffer: Buffer, length: number, position: number): Promise<void> {
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buffer, filled, length - filled, position + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  buffer.fill(0, filled, length);
}

/** The blocks of `ranges` whose contents differ between the two images, adjacent ones merged. */
async function* differingBlocks(
  base: FileHandle,
  target: FileHandle,
  ranges: AsyncIterable<BlockRange>,
  signal: AbortSignal,
): AsyncGenerator<BlockRange> {
  const left = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  const right = Buffer.allocUnsafe(READ_CHUNK_BYTES);
  let run: BlockRange | undefined;
  for await (const range of ranges) {
    const stop = range.offset + range.length;
    for (let chunk = range.offset; chunk < stop; chunk += READ_CHUNK_BYTES) {
      signal.throwIfAborted();
      const length = Math.min(READ_CHUNK_BYTES, stop - chunk);
      await Promise.all([readFully(base, left, length, chunk), readFully(target, right, length, chunk)]);
      for (let at = 0; at < length; at += COMPARE_BLOCK_BYTES) {
        const size = Math.min(COMPARE_BLOCK_BYTES, length - at);
        if (left.subarray(at, at + size).equals(right.subarray(at, at + size))) continue;
        const offset = chunk + at;
        if (run && run.offset + run.length === offset) {
          run = { offset: run.offset, length: run.length + size };
          continue;
        }
        if (run) yield run;
        run = { offset, length: size };
      }
    }
  }
  if (run) yield run;
}

/**
 * The ranges within [from, end) whose contents differ between two images of
 * one volume, in whole comparison blocks (the first cut at `from`): ranges
 * both images share on disk are skipped without reading, every other range
 * where either holds data is compared. The base image may be shorter (the
 * volume grew); past its end it reads as zeros.
 */
export function changedRanges(
  images: { readonly base: FileHandle; readonly target: FileHandle },
  extents: { readonly base: AsyncIterable<DataExtent>; readonly target: AsyncIterable<DataExtent> },
  from: number,
  end: number,
  signal: AbortSignal,
): AsyncIterable<BlockRange> {
  const candidates = merged(blockAligned(candidateRanges(extents.base, extents.target, from, end), end));
  return clipped(differingBlocks(images.base, images.target, candidates, signal), from, end);
}
