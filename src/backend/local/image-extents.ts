import { spawn } from "../../util/spawn.js";
import type { FileHandle } from "node:fs/promises";
import { BoundedOutput, CommandError } from "../../util/exec.js";
import { findExecutable } from "../../util/executables.js";

/**
 * Where an image file holds data, from the filesystem's own extent map
 * (the FIEMAP ioctl, read through `xfs_io -c fiemap`, which works on any
 * filesystem that implements FIEMAP: ext4, xfs, btrfs). Node has no
 * lseek(SEEK_DATA) and reading the image to find zeros would report what is
 * zero, not what is allocated; FIEMAP also gives each extent's physical
 * place on disk, which says when two images share a block (a reflink copy).
 *
 * On a filesystem without FIEMAP (tmpfs) the whole image counts as data.
 *
 * The map is read as xfs_io writes it, line by line, so an image with
 * millions of extents never sits in memory whole: a consumer that stops
 * pulling stops the tool (its output pipe fills).
 */

/** A range of an image holding data. */
export interface DataExtent {
  /** Byte offset in the image. */
  readonly offset: number;
  readonly length: number;
  /**
   * Byte offset on the filesystem's device, when FIEMAP reports a stable one;
   * two extents at the same physical place hold the same bytes. Undefined for
   * extents whose place is unknown, delayed, encoded or shared with metadata.
   */
  readonly physical: number | undefined;
}

export const FIEMAP_TOOL = "xfs_io";

const SECTOR = 512;
const FIEMAP_EXTENT_UNKNOWN = 0x2;
const FIEMAP_EXTENT_DELALLOC = 0x4;
const FIEMAP_EXTENT_ENCODED = 0x8;
const FIEMAP_EXTENT_NOT_ALIGNED = 0x100;
const FIEMAP_EXTENT_DATA_INLINE = 0x200;
const FIEMAP_EXTENT_DATA_TAIL = 0x400;
const FIEMAP_EXTENT_UNWRITTEN = 0x800;
/** Flags under which an extent's physical offset does not identify its bytes. */
const NO_STABLE_PLACE =
  FIEMAP_EXTENT_UNKNOWN |
  FIEMAP_EXTENT_DELALLOC |
  FIEMAP_EXTENT_ENCODED |
  FIEMAP_EXTENT_NOT_ALIGNED |
  FIEMAP_EXTENT_DATA_INLINE |
  FIEMAP_EXTENT_DATA_TAIL;

/** What xfs_io says when the filesystem does not implement the FIEMAP ioctl. */
const NO_FIEMAP = /FS_IOC_FIEMAP.*(?:Operation not supported|Inappropriate ioctl)/;

/** `   3: [8000..8007]:    228007744..228007751     8   0x1` (sectors of 512 bytes; "hole" for a hole). */
const EXTENT_LINE = /^\s*\d+:\s+\[(\d+)\.\.(\d+)\]:\s+(?:hole|(\d+)\.\.\d+)\s+\d+(?:\s+0x([0-9a-f]+))?\s*$/;
const HEADER_LINE = /^\s*EXT:|:$/;

/**
 * One line of `xfs_io -c "fiemap -v"` output as a data extent; undefined for
 * headers, holes and unwritten (preallocated, reads as zeros) extents.
 * Throws on a line it cannot read, so a changed output format fails loudly.
 */
export function parseFiemapLine(line: string): DataExtent | undefined {
  if (line.trim() === "" || HEADER_LINE.test(line)) return undefined;
  const match = EXTENT_LINE.exec(line);
  if (!match) throw new Error(`unexpected ${FIEMAP_TOOL} fiemap output line ${JSON.stringify(line.slice(0, 120))}`);
  const [, first, last, physical, flagsHex] = match;
  if (physical === undefined) return undefined;
  const flags = Number.parseInt(flagsHex ?? "0", 16);
  if (flags & FIEMAP_EXTENT_UNWRITTEN) return undefined;
  const offset = Number(first) * SECTOR;
  return {
    offset,
    length: (Number(last) + 1) * SECTOR - offset,
    physical: flags & NO_STABLE_PLACE ? undefined : Number(physical) * SECTOR,
  };
}

async function* linesOf(stream: AsyncIterable<string>): AsyncGenerator<string> {
  let rest = "";
  for await (const chunk of stream) {
    const lines = (rest + chunk).split("\n");
    rest = lines.pop() ?? "";
    yield* lines;
  }
  if (rest !== "") yield rest;
}

/**
 * The data extents of an open image from byte `from` on (the first may start
 * up to a sector earlier), in ascending order,
 * adjacent ones merged when they continue each other on disk too. The tool
 * reads the image through this process's descriptor, so the map is of the
 * very file `handle` holds, even if its name is removed meanwhile. Stopping
 * the iteration early (or `signal`) kills the tool.
 */
export async function* dataExtents(handle: FileHandle, from: number, signal: AbortSignal): AsyncGenerator<DataExtent> {
  signal.throwIfAborted();
  const tool = await findExecutable(FIEMAP_TOOL);
  if (!tool) throw new CommandError(FIEMAP_TOOL, [], null, "", `${FIEMAP_TOOL} is not installed on this host (package xfsprogs)`);
  const args = ["-r", "-c", `fiemap -v ${Math.floor(from / SECTOR) * SECTOR}`, `/proc/${process.pid}/fd/${handle.fd}`];
  const child = spawn(tool, args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, LC_ALL: "C" },
    signal,
    killSignal: "SIGKILL",
  });
  const stderr = new BoundedOutput(4096, 4096);
  child.stderr.on("data", (chunk: Buffer) => stderr.push(chunk));
  child.on("error", () => undefined); // reported through "close" below
  const exited = new Promise<number | null>((resolve) => child.once("close", (code) => resolve(code)));
  let finished = false;
  try {
    child.stdout.setEncoding("utf8");
    let pending: DataExtent | undefined;
    for await (const line of linesOf(child.stdout)) {
      const extent = parseFiemapLine(line);
      if (!extent) continue;
      if (
        pending &&
        pending.offset + pending.length === extent.offset &&
        pending.physical !== undefined &&
        extent.physical === pending.physical + pending.length
      ) {
        pending = { ...pending, length: pending.length + extent.length };
        continue;
      }
      if (pending) yield pending;
      pending = extent;
    }
    const code = await exited;
    signal.throwIfAborted();
    if (code !== 0 && pending === undefined && NO_FIEMAP.test(stderr.text())) {
      // A filesystem without FIEMAP (tmpfs): no map, so all of the image counts as data, with no place on disk.
      const { size } = await handle.stat();
      finished = true;
      if (size > from) yield { offset: from, length: size - from, physical: undefined };
      return;
    }
    if (code !== 0) {
      const detail = stderr.text().trim().split("\n").slice(-3).join("; ");
      throw new CommandError(FIEMAP_TOOL, args, code, detail, `exit status ${code ?? "(killed)"}${detail ? `: ${detail}` : ""}`);
    }
    finished = true;
    if (pending) yield pending;
  } finally {
    if (!finished && child.exitCode === null) child.kill("SIGKILL");
  }
}
