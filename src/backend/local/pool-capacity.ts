import { statSync } from "node:fs";
import { statfs } from "node:fs/promises";
import type { PoolReading } from "../../util/metrics.js";
import { PARTIAL_SUFFIX, snapshotImagePath, volumeImagePath } from "./layout.js";
import type { StateView } from "./state-store.js";

/**
 * What the data dir's filesystem holds and owes. Volumes are sparse: they
 * occupy only what was written (allocated) but may grow to their full size
 * (logical). Snapshots never change, so they owe nothing beyond what they
 * occupy.
 */
export interface PoolFigures {
  /** Free bytes of the filesystem for unprivileged users (statfs f_bavail). */
  readonly freeBytes: number;
  /** Thin volumes: their full sizes and what they occupy. */
  readonly volumeLogicalBytes: number;
  readonly volumeAllocatedBytes: number;
  /** Thick volumes occupy their full size already: only what they hold is counted, never multiplied. */
  readonly thickAllocatedBytes: number;
  readonly snapshotAllocatedBytes: number;
}

/**
 * Bytes that may still be promised to new or growing volumes:
 *
 *   (free + allocated by thin images and snapshots) × overcommit ratio − (thin volumes' full sizes + snapshots' allocation)
 *
 * With ratio 1 every volume can be written completely even if all are written
 * at once; a ratio above 1 promises more than the disk holds (thin
 * provisioning), below 1 keeps part of the space in reserve. Thick volumes
 * hold their whole size already, so they are outside the ratio: they neither
 * add to what may be promised nor owe anything more.
 */
export function availableBytes(pool: PoolFigures, overcommitRatio: number): number {
  const usable = (pool.freeBytes + pool.volumeAllocatedBytes + pool.snapshotAllocatedBytes) * overcommitRatio;
  const promised = pool.volumeLogicalBytes + pool.snapshotAllocatedBytes;
  return Math.max(0, Math.floor(usable - promised));
}

/**
 * Bytes an image (and a partial copy of it) occupies. Synchronous on purpose:
 * a stat is a few microseconds, while a thread-pool round trip per image made
 * measuring a pool of 10,000 volumes take seconds.
 */
function imageAllocation(path: string): number {
  let bytes = 0;
  for (const file of [path, `${path}${PARTIAL_SUFFIX}`]) {
    const stats = statSync(file, { throwIfNoEntry: false });
    if (stats) bytes += stats.blocks * 512;
  }
  return bytes;
}

/** Measure the pool: one statfs and one stat per image. Every record counts, whatever its phase. */
export async function measurePool(dataDir: string, state: StateView): Promise<PoolFigures> {
  const fs = await statfs(dataDir);
  let volumeLogicalBytes = 0;
  let volumeAllocatedBytes = 0;
  let thickAllocatedBytes = 0;
  let snapshotAllocatedBytes = 0;
  for (const volume of Object.values(state.volumes)) {
    const allocated = imageAllocation(volumeImagePath(dataDir, volume.id));
    if (volume.provisioning === "thick") {
      thickAllocatedBytes += allocated;
    } else {
      volumeLogicalBytes += volume.sizeBytes;
      volumeAllocatedBytes += allocated;
    }
  }
  for (const snapshot of Object.values(state.snapshots)) {
    snapshotAllocatedBytes += imageAllocation(snapshotImagePath(dataDir, snapshot.id));
  }
  return { freeBytes: fs.bavail * fs.bsize, volumeLogicalBytes, volumeAllocatedBytes, thickAllocatedBytes, snapshotAllocatedBytes };
}

/** The pool's figures for metrics: one statfs and one stat per image, only when asked. */
export async function poolReading(dataDir: string, state: StateView, overcommitRatio: number): Promise<PoolReading> {
  const pool = await measurePool(dataDir, state);
  const usedBytes = pool.volumeAllocatedBytes + pool.thickAllocatedBytes + pool.snapshotAllocatedBytes;
  return {
    dataDir,
    capacityBytes: pool.freeBytes + usedBytes,
    provisionedBytes: pool.volumeLogicalBytes + pool.thickAllocatedBytes + pool.snapshotAllocatedBytes,
    usedBytes,
    availableBytes: availableBytes(pool, overcommitRatio),
    volumes: Object.values(state.volumes).filter((v) => v.phase === "ready").length,
    snapshots: Object.values(state.snapshots).filter((s) => s.phase === "ready").length,
  };
}
