import { rename } from "node:fs/promises";
import { AlreadyExists, InvalidArgument, NotFound } from "../../errors.js";
import type { NewSnapshot, Page, Snapshot, SnapshotFilter } from "../backend.js";
import { crashPoint } from "./crash-points.js";
import { allocatedBytes, fsyncPath, removeIfExists } from "./durable-files.js";
import { withFrozenSource } from "./frozen-source.js";
import { clientVisible } from "./host-errors.js";
import { isLocalId, PARTIAL_SUFFIX, snapshotImagePath, snapshotsDir, volumeImagePath } from "./layout.js";
import { pageAfter, snapshotsInListOrder } from "./list-order.js";
import { newSnapshotId, requireOnNode } from "./local-ids.js";
import { validateSnapshotParameters } from "./local-parameters.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import type { LocalPool } from "./pool.js";
import { copySparse } from "./sparse-copy.js";
import type { SnapshotRecord } from "./state.js";

export function toSnapshot(record: SnapshotRecord): Snapshot {
  return {
    id: record.id,
    name: record.name,
    sourceVolumeId: record.sourceVolumeId,
    sizeBytes: record.sizeBytes,
    createdAt: new Date(record.createdAt),
    readyToUse: true,
    ...(record.groupSnapshotId !== undefined ? { groupSnapshotId: record.groupSnapshotId } : {}),
  };
}

/**
 * Snapshots of local volumes: a copy of the volume's image under
 * <data-dir>/snapshots, cut while the volume's filesystem is frozen where it is
 * mounted on this node (frozen-source.ts). A snapshot image never changes, so
 * restoring one is a plain copy.
 */
export class LocalSnapshots {
  readonly #pool: LocalPool;

  constructor(pool: LocalPool) {
    this.#pool = pool;
  }

  async findByName(name: string): Promise<Snapshot | undefined> {
    // A group's members are found through their group, never by a CreateSnapshot name.
    const record = Object.values(this.#pool.store.state.snapshots).find(
      (s) => s.name === name && s.phase === "ready" && s.groupSnapshotId === undefined,
    );
    return record ? toSnapshot(record) : undefined;
  }

  async get(snapshotId: string): Promise<Snapshot | undefined> {
    const record = this.#pool.readySnapshot(snapshotId);
    return record ? toSnapshot(record) : undefined;
  }

  async create(spec: NewSnapshot, signal: AbortSignal): Promise<Snapshot> {
    const pool = this.#pool;
    signal.throwIfAborted();
    validateSnapshotParameters(spec.parameters);
    const volume = pool.readyVolume(spec.sourceVolumeId, "source volume");
    if (!volume) throw NotFound("source volume %s does not exist", spec.sourceVolumeId);
    const id = newSnapshotId(pool.nodeId);
    const source = volumeImagePath(pool.dataDir, volume.id);
    const image = snapshotImagePath(pool.dataDir, id);
    const partial = `${image}${PARTIAL_SUFFIX}`;

    await pool.store.update(async (draft) => {
      await pool.dropUnfinished(draft, spec.name, "snapshot");
      if (Object.values(draft.snapshots).some((s) => s.name === spec.name && s.phase === "ready"))
        throw AlreadyExists("a snapshot named %s already exists", spec.name);
      // The copy occupies what the volume occupies (less with reflinks): it must fit in the pool and on the disk.
      await pool.reserve(draft, await allocatedBytes(source), "snapshot", true);
      draft.snapshots[id] = {
        id,
        name: spec.name,
        phase: "creating",
        sourceVolumeId: volume.id,
        sizeBytes: volume.sizeBytes,
        parameters: { ...spec.parameters },
        createdAt: new Date().toISOString(),
        listPosition: 0,
        frozenMounts: [],
      };
    });
    crashPoint("snapshot-create:recorded");
    try {
      let cutAt = new Date();
      await withFrozenSource(
        source,
        pool.log,
        (mounts) => pool.recordFrozen("snapshot", id, mounts),
        async () => {
          crashPoint("snapshot-create:frozen");
          cutAt = new Date();
          await copySparse(source, partial, pool.copyProgress({ snapshotId: id }));
        },
      );
      crashPoint("snapshot-create:written");
      await rename(partial, image);
      await fsyncPath(snapshotsDir(pool.dataDir));
      crashPoint("snapshot-create:renamed");
      const record = await pool.store.update((draft) => {
        const ready = pool.markReady(draft, "snapshot", id) as SnapshotRecord;
        draft.snapshots[id] = { ...ready, createdAt: cutAt.toISOString() };
        return draft.snapshots[id];
      });
      crashPoint("snapshot-create:ready");
      pool.log.info({ snapshotId: id, name: spec.name, sourceVolumeId: volume.id }, "snapshot created");
      return toSnapshot(record);
    } catch (err) {
      await pool
        .rollBack("snapshot", id)
        .catch((cleanup: unknown) =>
          pool.log.error({ snapshotId: id, err: (cleanup as Error).message }, "could not roll back a failed snapshot; the next start will"),
        );
      throw clientVisible(err);
    }
  }

  async delete(snapshotId: string): Promise<void> {
    const pool = this.#pool;
    const record = isLocalId(snapshotId) ? pool.store.state.snapshots[snapshotId] : undefined;
    // Another node's snapshot is not "already gone": answering OK would let the CO forget it while it still uses space there.
    if (!record) requireOnNode(snapshotId, "snapshot", pool.nodeId);
    if (!record || record.phase === "creating") return;
    if (record.groupSnapshotId !== undefined) {
      throw InvalidArgument(
        "snapshot %s is part of group snapshot %s and cannot be deleted alone: DeleteVolumeGroupSnapshot deletes it with its group",
        snapshotId,
        record.groupSnapshotId,
      );
    }
    await pool.store.update((draft) => {
      const current = draft.snapshots[snapshotId];
      if (current) draft.snapshots[snapshotId] = { ...current, phase: "deleting" };
    });
    crashPoint("snapshot-delete:marked");
    const image = snapshotImagePath(pool.dataDir, snapshotId);
    await removeIfExists(image);
    await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    await fsyncPath(snapshotsDir(pool.dataDir));
    crashPoint("snapshot-delete:unlinked");
    await pool.store.update((draft) => {
      delete draft.snapshots[snapshotId];
    });
    pool.log.info({ snapshotId }, "snapshot deleted");
  }

  async list(filter: SnapshotFilter, maxEntries: number, startingToken: string): Promise<Page<Snapshot>> {
    const state = this.#pool.store.state;
    const after = decodePageToken("snapshots", startingToken, state.lastListPosition);
    const ordered = snapshotsInListOrder(state);
    const filtered =
      filter.snapshotId === undefined && filter.sourceVolumeId === undefined
        ? ordered
        : ordered.filter(
            (s) =>
              (filter.snapshotId === undefined || s.id === filter.snapshotId) &&
              (filter.sourceVolumeId === undefined || s.sourceVolumeId === filter.sourceVolumeId),
          );
    const { page, more } = pageAfter(filtered, after, maxEntries);
    const last = page.at(-1);
    return {
      items: page.map((s) => toSnapshot(s)),
      nextToken: last && more ? encodePageToken("snapshots", last.listPosition) : "",
    };
  }
}
