import type { Logger } from "../../log/logger.js";
import { ResourceExhausted } from "../../errors.js";
import { formatBytes } from "../../util/bytes.js";
import type { ProgressOptions } from "../../util/progress.js";
import type { Topology } from "../backend.js";
import { removeIfExists } from "./durable-files.js";
import { isLocalId, nodeTopologyKey, PARTIAL_SUFFIX, snapshotImagePath, volumeImagePath } from "./layout.js";
import { requireOnNode } from "./local-ids.js";
import { availableBytes, measurePool } from "./pool-capacity.js";
import type { FrozenMount, LocalState, SnapshotRecord, VolumeRecord } from "./state.js";
import type { StateStore } from "./state-store.js";

/**
 * The local backend's pool: image files under the data dir and the metadata
 * that describes them, with the steps volume and snapshot operations share.
 * A creation goes: drop an unfinished attempt and reserve capacity (inside one
 * store update), record the frozen mounts of a consistent copy, mark ready;
 * on failure, roll back.
 */
export class LocalPool {
  readonly dataDir: string;
  readonly driverName: string;
  readonly nodeId: string;
  readonly overcommitRatio: number;
  readonly store: StateStore;
  readonly log: Logger;
  readonly #progressIntervalMs: number | undefined;

  constructor(options: {
    dataDir: string;
    driverName: string;
    nodeId: string;
    overcommitRatio: number;
    store: StateStore;
    log: Logger;
    /** Time between "still waiting" lines of a long image copy (default: 10 s). */
    progressIntervalMs?: number;
  }) {
    this.dataDir = options.dataDir;
    this.driverName = options.driverName;
    this.nodeId = options.nodeId;
    this.overcommitRatio = options.overcommitRatio;
    this.store = options.store;
    this.log = options.log;
    this.#progressIntervalMs = options.progressIntervalMs;
  }

  /** A ready volume of this pool; undefined when unknown, NOT_FOUND naming both nodes when its id names another node. */
  readyVolume(volumeId: string, kind: "volume" | "source volume" = "volume"): VolumeRecord | undefined {
    const record = isLocalId(volumeId) ? this.store.state.volumes[volumeId] : undefined;
    if (!record) requireOnNode(volumeId, kind, this.nodeId);
    return record?.phase === "ready" ? record : undefined;
  }

  /** A ready snapshot of this pool; undefined when unknown, NOT_FOUND naming both nodes when its id names another node. */
  readySnapshot(snapshotId: string, kind: "snapshot" | "source snapshot" = "snapshot"): SnapshotRecord | undefined {
    const record = isLocalId(snapshotId) ? this.store.state.snapshots[snapshotId] : undefined;
    if (!record) requireOnNode(snapshotId, kind, this.nodeId);
    return record?.phase === "ready" ? record : undefined;
  }

  /** Where every local volume is accessible: this node. */
  topology(): Topology {
    return { [nodeTopologyKey(this.driverName)]: this.nodeId };
  }

  onThisNode(topology: Topology): boolean {
    return topology[nodeTopologyKey(this.driverName)] === this.nodeId;
  }

  copyProgress(fields: Record<string, string>): ProgressOptions {
    return { log: this.log, intervalMs: this.#progressIntervalMs, fields };
  }

  /**
   * Refuse what the pool cannot hold; `physical` when the bytes are written at
   * once (a snapshot copy) and so must also be free on the disk now. Runs inside
   * a store update, so concurrent creations cannot both take the last bytes.
   */
  async reserve(draft: LocalState, bytes: number, what: string, physical = false): Promise<void> {
    const pool = await measurePool(this.dataDir, draft);
    const available = availableBytes(pool, this.overcommitRatio);
    if (bytes > available || (physical && bytes > pool.freeBytes)) {
      throw ResourceExhausted(
        "not enough capacity for this %s: it needs %s and the pool has %s left (%s free on the data dir's filesystem, overcommit ratio %s)",
        what,
        formatBytes(bytes),
        formatBytes(physical ? Math.min(available, pool.freeBytes) : available),
        formatBytes(pool.freeBytes),
        this.overcommitRatio,
      );
    }
  }

  /** Leftovers of an earlier attempt with this name that failed and could not be rolled back at the time. */
  async dropUnfinished(draft: LocalState, name: string, kind: "volume" | "snapshot"): Promise<void> {
    const records = kind === "volume" ? draft.volumes : draft.snapshots;
    for (const record of Object.values(records)) {
      if (record.name !== name || record.phase !== "creating") continue;
      const image = kind === "volume" ? volumeImagePath(this.dataDir, record.id) : snapshotImagePath(this.dataDir, record.id);
      await removeIfExists(image);
      await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
      delete records[record.id];
    }
  }

  async recordFrozen(kind: "volume" | "snapshot", id: string, mounts: readonly FrozenMount[]): Promise<void> {
    await this.store.update((draft) => {
      if (kind === "volume") {
        const record = draft.volumes[id];
        if (record) draft.volumes[id] = { ...record, frozenMounts: [...mounts] };
      } else {
        const record = draft.snapshots[id];
        if (record) draft.snapshots[id] = { ...record, frozenMounts: [...mounts] };
      }
    });
  }

  markReady(draft: LocalState, kind: "volume" | "snapshot", id: string): VolumeRecord | SnapshotRecord {
    draft.lastListPosition += 1;
    if (kind === "volume") {
      const record = draft.volumes[id];
      if (!record) throw new Error(`volume ${id} vanished while it was being created`);
      draft.volumes[id] = { ...record, phase: "ready", listPosition: draft.lastListPosition, frozenMounts: [] };
      return draft.volumes[id];
    }
    const record = draft.snapshots[id];
    if (!record) throw new Error(`snapshot ${id} vanished while it was being created`);
    draft.snapshots[id] = { ...record, phase: "ready", listPosition: draft.lastListPosition, frozenMounts: [] };
    return draft.snapshots[id];
  }

  /** Undo a failed creation: files first, then the record. */
  async rollBack(kind: "volume" | "snapshot", id: string): Promise<void> {
    const image = kind === "volume" ? volumeImagePath(this.dataDir, id) : snapshotImagePath(this.dataDir, id);
    await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    await removeIfExists(image);
    await this.store.update((draft) => {
      if (kind === "volume") delete draft.volumes[id];
      else delete draft.snapshots[id];
    });
  }
}
