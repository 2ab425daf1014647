import { open } from "node:fs/promises";
import type { Logger } from "../../log/logger.js";
import { loopDevicesFor } from "../../mounter/loop.js";
import { mountsOfSource, readMountInfo } from "../../mounter/mountinfo.js";
import { FailedPrecondition, InvalidArgument } from "../../errors.js";
import { run } from "../../util/exec.js";
import type { StringMap } from "../backend.js";
import { dataExtents, FIEMAP_TOOL } from "./image-extents.js";

/**
 * How a local volume's image holds its blocks, the one parameter of the local
 * backend (a StorageClass parameter, a mutable parameter at creation, or a
 * ControllerModifyVolume / VolumeAttributesClass change):
 *
 * - `thin` (the default): a sparse file, only what was written occupies the
 *   disk; with --overcommit-ratio above 1 the pool may promise more than the
 *   disk holds.
 * - `thick`: every block of the image is allocated (fallocate, which leaves
 *   the data alone), so writes to the volume can never fail for lack of space,
 *   whatever the ratio; the pool counts the whole size as used.
 *
 * Going back to thin gives the unused space back: on an image nothing uses,
 * every range that holds no written data (allocated by fallocate, read as
 * zeros) and every block of zeros is punched out (the image stays
 * byte-identical); on a mounted volume the filesystem discards its free
 * blocks (`fstrim`, online: the loop device punches them out of the image). A
 * volume attached as a raw block device cannot be thinned safely (a write
 * racing the hole punching could be lost): FAILED_PRECONDITION until it is
 * unstaged.
 */
export type Provisioning = "thin" | "thick";

export const PROVISIONING_KEY = "provisioning";
const VALUES: readonly Provisioning[] = ["thin", "thick"];

/** Bound on a fallocate, dig-holes or fstrim run (they touch every block of a large image). */
const PROVISIONING_TIMEOUT_MS = 30 * 60_000;

export function isProvisioning(value: string): value is Provisioning {
  return (VALUES as readonly string[]).includes(value);
}

/** The provisioning a map asks for, undefined when it does not name one; INVALID_ARGUMENT for another value. */
export function provisioningOf(map: StringMap, field: string): Provisioning | undefined {
  const value = map[PROVISIONING_KEY];
  if (value === undefined) return undefined;
  if (!isProvisioning(value)) throw InvalidArgument("%s.%s must be thin or thick, not %q", field, PROVISIONING_KEY, value);
  return value;
}

/** Allocate every block of the image up to its size; existing data is kept. ENOSPC surfaces as the command's error. */
export async function allocateImage(image: string, sizeBytes: number, signal?: AbortSignal): Promise<void> {
  await run("fallocate", ["--length", String(sizeBytes), image], { timeoutMs: PROVISIONING_TIMEOUT_MS, signal });
}

/**
 * Give back the blocks of an image that hold nothing: punch out its zeroed
 * ranges, or, while its filesystem is mounted on this node, let the
 * filesystem discard its free blocks.
 */
export async function releaseUnusedBlocks(image: string, log: Logger, signal?: AbortSignal): Promise<void> {
  const devices = await loopDevicesFor(image);
  if (devices.length === 0) {
    await punchUnwritten(image, signal);
    // Written blocks of zeros (`fallocate --dig-holes` finds them; it skips preallocated ranges, punched above).
    await run("fallocate", ["--dig-holes", image], { timeoutMs: PROVISIONING_TIMEOUT_MS, signal });
    return;
  }
  const entries = await readMountInfo();
  for (const device of devices) {
    const [mount] = mountsOfSource(entries, device);
    if (!mount) {
      throw FailedPrecondition(
        "the volume is attached as a raw block device (%s) on this node, whose unused blocks cannot be told apart safely: NodeUnstageVolume it, then ask for thin again",
        device,
      );
    }
    if (mount.superOptions.includes("ro")) continue;
    const { stdout } = await run("fstrim", ["--verbose", mount.mountPoint], { timeoutMs: PROVISIONING_TIMEOUT_MS, signal });
    log.info({ mountPoint: mount.mountPoint, fstrim: stdout.trim() }, "discarded the free blocks of a mounted volume");
  }
}

/** Ranges punched by one run of the tool: its command line stays far below the kernel's limit. */
const PUNCHES_PER_RUN = 256;

/** Punch out every range of an image that holds no written data: the gaps between its data extents (FIEMAP). */
async function punchUnwritten(image: string, signal?: AbortSignal): Promise<void> {
  const controller = new AbortController();
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const handle = await open(image, "r");
  try {
    const { size } = await handle.stat();
    const gaps: string[] = [];
    let next = 0;
    const flush = async () => {
      if (gaps.length === 0) return;
      await run(FIEMAP_TOOL, [...gaps.splice(0).flatMap((command) => ["-c", command]), image], {
        timeoutMs: PROVISIONING_TIMEOUT_MS,
        signal,
      });
    };
    for await (const extent of dataExtents(handle, 0, controller.signal)) {
      if (extent.offset > next) gaps.push(`fpunch ${next} ${extent.offset - next}`);
      next = Math.max(next, extent.offset + extent.length);
      if (gaps.length >= PUNCHES_PER_RUN) await flush();
    }
    if (size > next) gaps.push(`fpunch ${next} ${size - next}`);
    await flush();
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await handle.close();
  }
}
