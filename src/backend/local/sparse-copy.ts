import { run } from "../../util/exec.js";
import { type ProgressOptions, withProgress } from "../../util/progress.js";
import { fsyncPath } from "./durable-files.js";

/**
 * How long one image copy may take. It is not tied to the caller's deadline:
 * a copy that outlives the CO's timeout would otherwise be thrown away and
 * restarted from zero by every retry, and never finish. The retry is answered
 * ABORTED while the copy runs (the in-flight key is held) and finds the
 * finished object by name afterwards.
 */
export const COPY_TIMEOUT_MS = 6 * 60 * 60_000;

/**
 * Copy an image to a new file without writing its holes: a reflink clone
 * (FICLONE) where the filesystem shares extents (xfs, btrfs), otherwise a copy
 * of the data extents only (SEEK_DATA/SEEK_HOLE), with runs of zeros turned
 * into holes. The copy is fsync'ed before this resolves. With `progress`, a
 * long copy logs that it is still running.
 */
export async function copySparse(source: string, target: string, progress?: ProgressOptions, signal?: AbortSignal): Promise<void> {
  await withProgress(`image copy of ${source}`, progress, async () => {
    await run("cp", ["--reflink=auto", "--sparse=always", "--no-preserve=all", "--", source, target], {
      timeoutMs: COPY_TIMEOUT_MS,
      signal,
    });
    await fsyncPath(target);
  });
}
