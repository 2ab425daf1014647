import { randomUUID } from "node:crypto";
import { rename } from "node:fs/promises";
import { AlreadyExists, DeadlineExceeded, FailedPrecondition, NotFound } from "../../errors.js";
import type { GroupSnapshot, GroupSnapshotBackend, NewGroupSnapshot, Snapshot } from "../backend.js";
import { crashPoint } from "./crash-points.js";
import { allocatedBytes, fsyncPath, removeIfExists } from "./durable-files.js";
import { usesOf, withFrozenImages } from "./frozen-source.js";
import { clientVisible } from "./host-errors.js";
import { PARTIAL_SUFFIX, snapshotImagePath, snapshotsDir, volumeImagePath } from "./layout.js";
import { newSnapshotId, requireOnNode, volumeNodeOf } from "./local-ids.js";
import { validateSnapshotParameters } from "./local-parameters.js";
import type { LocalPool } from "./pool.js";
import { toSnapshot } from "./snapshots.js";
import { copySparse } from "./sparse-copy.js";
import type { GroupRecord, LocalState, SnapshotRecord } from "./state.js";

/**
 * Volume group snapshots of the local backend: every member volume's
 * filesystem that is mounted on this node is frozen, all images are copied
 * (reflink clones where the data dir's filesystem shares extents, so the
 * freeze lasts milliseconds there), then all are thawed: the members hold one
 * moment of the whole group. The freeze is bounded (FREEZE_LIMIT_MS, or the
 * caller's deadline if sooner) and always undone; the members' records carry
 * what was frozen, so a restart after a crash thaws it (reconcile.ts). A member
 * attached as a raw block device cannot be paused, so a group with one is
 * refused rather than cut inconsistently.
 */

/** Longest the members' filesystems stay frozen while their images are copied. */
export const FREEZE_LIMIT_MS = 60_000;

/** Group snapshot ids: like volume ids, a random UUID and the node that holds the members. */
export function newGroupSnapshotId(nodeId: string): string {
  return `group-${randomUUID()}.${nodeId}`;
}

function groupsOf(state: LocalState): Record<string, GroupRecord> {
  state.groups ??= {};
  return state.groups;
}

export class LocalGroupSnapshots implements GroupSnapshotBackend {
  readonly #pool: LocalPool;

  constructor(pool: LocalPool) {
    this.#pool = pool;
  }

  async findByName(name: string): Promise<GroupSnapshot | undefined> {
    const record = Object.values(this.#pool.store.state.groups ?? {}).find((g) => g.name === name && g.phase === "ready");
    return record ? this.#toGroup(record) : undefined;
  }

  async get(groupSnapshotId: string): Promise<GroupSnapshot | undefined> {
    const record = this.#pool.store.state.groups?.[groupSnapshotId];
    if (!record) requireOnNode(groupSnapshotId, "group snapshot", this.#pool.nodeId);
    return record?.phase === "ready" ? this.#toGroup(record) : undefined;
  }

  async create(spec: NewGroupSnapshot, signal: AbortSignal): Promise<GroupSnapshot> {
    const pool = this.#pool;
    signal.throwIfAborted();
    validateSnapshotParameters(spec.parameters);
    const elsewhere = spec.sourceVolumeIds.filter((id) => {
      const node = volumeNodeOf(id);
      return node !== undefined && node !== pool.nodeId && !pool.store.state.volumes[id];
    });
    if (elsewhere.length > 0) {
      throw FailedPrecondition(
        "volumes %q live on other nodes than this one (%s): a group snapshot freezes its members together, so all of them must be on one node",
        elsewhere,
        pool.nodeId,
      );
    }
    const volumes = spec.sourceVolumeIds.map((id) => {
      const volume = pool.readyVolume(id, "source volume");
      if (!volume) throw NotFound("source volume %s does not exist", id);
      return volume;
    });
    const sources = volumes.map((v) => volumeImagePath(pool.dataDir, v.id));
    for (const [i, source] of sources.entries()) {
      const { rawDevices } = await usesOf(source);
      if (rawDevices.length > 0) {
        throw FailedPrecondition(
          "volume %s is attached as a raw block device (%s), whose writes cannot be paused for a consistent group snapshot: unstage it or snapshot it alone",
          volumes[i]?.id ?? "",
          rawDevices.join(", "),
        );
      }
    }

    const groupId = newGroupSnapshotId(pool.nodeId);
    const members = volumes.map((volume, i) => ({ volume, source: sources[i] ?? "", id: newSnapshotId(pool.nodeId) }));
    await pool.store.update(async (draft) => {
      const groups = groupsOf(draft);
      for (const stale of Object.values(groups)) {
        if (stale.name === spec.name && stale.phase === "creating") await this.#dropUnfinished(draft, stale);
      }
      if (Object.values(groups).some((g) => g.name === spec.name && g.phase === "ready"))
        throw AlreadyExists("a group snapshot named %s already exists", spec.name);
      let bytes = 0;
      for (const m of members) bytes += await allocatedBytes(m.source);
      await pool.reserve(draft, bytes, "group snapshot", true);
      const createdAt = new Date().toISOString();
      for (const m of members) {
        draft.snapshots[m.id] = {
          id: m.id,
          name: `${spec.name}/${m.volume.id}`,
          phase: "creating",
          sourceVolumeId: m.volume.id,
          sizeBytes: m.volume.sizeBytes,
          parameters: { ...spec.parameters },
          createdAt,
          listPosition: 0,
          frozenMounts: [],
          groupSnapshotId: groupId,
        };
      }
      groups[groupId] = {
        id: groupId,
        name: spec.name,
        phase: "creating",
        sourceVolumeIds: volumes.map((v) => v.id),
        snapshotIds: members.map((m) => m.id),
        parameters: { ...spec.parameters },
        createdAt,
      };
    });
    crashPoint("group-snapshot-create:recorded");

    // The freeze ends by FREEZE_LIMIT_MS or the caller's deadline, whichever comes first: the copies are killed.
    const limit = AbortSignal.any([signal, AbortSignal.timeout(FREEZE_LIMIT_MS)]);
    try {
      let cutAt = new Date();
      await withFrozenImages(
        sources,
        pool.log,
        (mountsPerImage) =>
          pool.store.update((draft) => {
            for (const [i, m] of members.entries()) {
              const record = draft.snapshots[m.id];
              if (record) draft.snapshots[m.id] = { ...record, frozenMounts: [...(mountsPerImage[i] ?? [])] };
            }
          }),
        async () => {
          crashPoint("group-snapshot-create:frozen");
          cutAt = new Date();
          await Promise.all(
            members.map((m) =>
              copySparse(
                m.source,
                `${snapshotImagePath(pool.dataDir, m.id)}${PARTIAL_SUFFIX}`,
                pool.copyProgress({ snapshotId: m.id }),
                limit,
              ),
            ),
          );
        },
      );
      for (const m of members) {
        const image = snapshotImagePath(pool.dataDir, m.id);
        await rename(`${image}${PARTIAL_SUFFIX}`, image);
      }
      await fsyncPath(snapshotsDir(pool.dataDir));
      crashPoint("group-snapshot-create:written");
      const record = await pool.store.update((draft) => {
        for (const m of members) {
          const ready = pool.markReady(draft, "snapshot", m.id) as SnapshotRecord;
          draft.snapshots[m.id] = { ...ready, createdAt: cutAt.toISOString() };
        }
        const groups = groupsOf(draft);
        const group = groups[groupId];
        if (!group) throw new Error(`group snapshot ${groupId} vanished while it was being created`);
        groups[groupId] = { ...group, phase: "ready", createdAt: cutAt.toISOString() };
        return groups[groupId];
      });
      pool.log.info({ groupSnapshotId: groupId, name: spec.name, sourceVolumeIds: record.sourceVolumeIds }, "group snapshot created");
      return this.#toGroup(record);
    } catch (err) {
      await this.#rollBack(groupId).catch((cleanup: unknown) =>
        pool.log.error(
          { groupSnapshotId: groupId, err: (cleanup as Error).message },
          "could not roll back a failed group snapshot; the next start will",
        ),
      );
      if (limit.aborted && !signal.aborted) {
        throw DeadlineExceeded(
          "the members could not be copied within %d s, the longest their filesystems may stay frozen; nothing was kept",
          FREEZE_LIMIT_MS / 1000,
        );
      }
      throw clientVisible(err);
    }
  }

  async delete(groupSnapshotId: string): Promise<void> {
    const pool = this.#pool;
    const record = pool.store.state.groups?.[groupSnapshotId];
    if (!record) requireOnNode(groupSnapshotId, "group snapshot", pool.nodeId);
    if (!record || record.phase === "creating") return;
    await pool.store.update((draft) => {
      const groups = groupsOf(draft);
      const current = groups[groupSnapshotId];
      if (!current) return;
      groups[groupSnapshotId] = { ...current, phase: "deleting" };
      for (const id of current.snapshotIds) {
        const member = draft.snapshots[id];
        if (member) draft.snapshots[id] = { ...member, phase: "deleting" };
      }
    });
    crashPoint("group-snapshot-delete:marked");
    for (const id of record.snapshotIds) {
      const image = snapshotImagePath(pool.dataDir, id);
      await removeIfExists(image);
      await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    }
    await fsyncPath(snapshotsDir(pool.dataDir));
    await pool.store.update((draft) => {
      for (const id of record.snapshotIds) delete draft.snapshots[id];
      delete groupsOf(draft)[groupSnapshotId];
    });
    pool.log.info({ groupSnapshotId }, "group snapshot deleted");
  }

  /** Undo a failed creation: member files first, then the records. */
  async #rollBack(groupId: string): Promise<void> {
    const record = this.#pool.store.state.groups?.[groupId];
    if (!record) return;
    await this.#pool.store.update((draft) => this.#dropUnfinished(draft, record));
  }

  async #dropUnfinished(draft: LocalState, record: GroupRecord): Promise<void> {
    for (const id of record.snapshotIds) {
      const image = snapshotImagePath(this.#pool.dataDir, id);
      await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
      await removeIfExists(image);
      delete draft.snapshots[id];
    }
    delete groupsOf(draft)[record.id];
  }

  #toGroup(record: GroupRecord): GroupSnapshot {
    const snapshots: Snapshot[] = [];
    for (const id of record.snapshotIds) {
      const member = this.#pool.store.state.snapshots[id];
      if (member) snapshots.push(toSnapshot(member));
    }
    return {
      id: record.id,
      name: record.name,
      sourceVolumeIds: record.sourceVolumeIds,
      snapshots,
      createdAt: new Date(record.createdAt),
      readyToUse: record.phase === "ready" && snapshots.length === record.snapshotIds.length,
    };
  }
}
