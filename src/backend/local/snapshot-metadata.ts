import { type FileHandle, open } from "node:fs/promises";
import { FailedPrecondition, InvalidArgument, NotFound } from "../../errors.js";
import { findExecutable } from "../../util/executables.js";
import type { BlockRange, SnapshotBlocks, SnapshotMetadataBackend } from "../backend.js";
import type { HealthCheck } from "../health-check.js";
import { allocatedRanges, changedRanges } from "./block-ranges.js";
import { dataExtents, FIEMAP_TOOL } from "./image-extents.js";
import { snapshotImagePath } from "./layout.js";
import type { LocalPool } from "./pool.js";
import type { SnapshotRecord } from "./state.js";

/**
 * Changed-block metadata of local snapshots. A snapshot image never changes
 * once it is ready, so its extent map is its allocation, and two snapshots of
 * one volume differ only where their images do: where they share extents
 * (reflink copies on xfs or btrfs) nothing is read, elsewhere the contents
 * are compared. Each call reads the images through descriptors opened when
 * it starts, so deleting a snapshot meanwhile does not cut a stream short.
 */
export class LocalSnapshotMetadata implements SnapshotMetadataBackend {
  readonly #pool: LocalPool;
  readonly health: HealthCheck = {
    name: "snapshot metadata tools",
    async check() {
      if (!(await findExecutable(FIEMAP_TOOL)))
        throw FailedPrecondition("%s is missing; install xfsprogs on the controller's host (or use the driver's image)", FIEMAP_TOOL);
      return "ready";
    },
  };

  constructor(pool: LocalPool) {
    this.#pool = pool;
  }

  #snapshot(snapshotId: string, field: string): SnapshotRecord {
    const record = this.#pool.readySnapshot(snapshotId);
    if (!record) throw NotFound("%s %s does not exist", field, snapshotId);
    return record;
  }

  async #open(record: SnapshotRecord): Promise<FileHandle> {
    try {
      return await open(snapshotImagePath(this.#pool.dataDir, record.id), "r");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") throw NotFound("snapshot %s was deleted", record.id);
      throw err;
    }
  }

  async allocatedBlocks(snapshotId: string): Promise<SnapshotBlocks> {
    const record = this.#snapshot(snapshotId, "snapshot");
    const openImage = () => this.#open(record);
    return {
      capacityBytes: record.sizeBytes,
      ranges: async function* (from: number, signal: AbortSignal): AsyncGenerator<BlockRange> {
        const image = await openImage();
        try {
          yield* allocatedRanges(dataExtents(image, from, signal), from, record.sizeBytes);
        } finally {
          await image.close();
        }
      },
    };
  }

  async changedBlocks(baseSnapshotId: string, targetSnapshotId: string): Promise<SnapshotBlocks> {
    const base = this.#snapshot(baseSnapshotId, "base snapshot");
    const target = this.#snapshot(targetSnapshotId, "target snapshot");
    if (base.id === target.id)
      throw InvalidArgument("the base and target snapshots are both %s; name two snapshots of one volume", base.id);
    if (base.sourceVolumeId !== target.sourceVolumeId)
      throw InvalidArgument(
        "snapshots %s and %s are of different volumes (%s and %s); a delta needs two snapshots of one volume",
        base.id,
        target.id,
        base.sourceVolumeId,
        target.sourceVolumeId,
      );
    if (Date.parse(target.createdAt) < Date.parse(base.createdAt))
      throw InvalidArgument("target snapshot %s was cut before base snapshot %s; swap them", target.id, base.id);
    const openImage = (record: SnapshotRecord) => this.#open(record);
    return {
      capacityBytes: target.sizeBytes,
      ranges: async function* (from: number, signal: AbortSignal): AsyncGenerator<BlockRange> {
        const baseImage = await openImage(base);
        try {
          const targetImage = await openImage(target);
          try {
            yield* changedRanges(
              { base: baseImage, target: targetImage },
              { base: dataExtents(baseImage, from, signal), target: dataExtents(targetImage, from, signal) },
              from,
              target.sizeBytes,
              signal,
            );
          } finally {
            await targetImage.close();
          }
        } finally {
          await baseImage.close();
        }
      },
    };
  }
}
