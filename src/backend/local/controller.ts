import { mkdir, readdir, rename, statfs } from "node:fs/promises";
import { resolve } from "node:path";
import type { Config } from "../../config.js";
import type { Logger } from "../../log/logger.js";
import type {
  ControllerBackend,
  ControllerFeatures,
  NewSnapshot,
  NewVolume,
  Page,
  PublishRequest,
  SizeRules,
  Snapshot,
  SnapshotFilter,
  StringMap,
  Topology,
  Volume,
  VolumeCondition,
} from "../backend.js";
import { AlreadyExists, FailedPrecondition, NotFound, OutOfRange, ResourceExhausted } from "../../csi/errors.js";
import { formatBytes } from "../../driver/capacity.js";
import type { HealthCheck } from "../../driver/readiness.js";
import { loopDevicesFor, refreshLoopCapacity } from "../../mounter/loop.js";
import { crashPoint } from "./crash-points.js";
import { DataDirLock } from "./data-dir-lock.js";
import { allocatedBytes, createSparseFile, fsyncPath, growFile, removeIfExists, statIfExists } from "./durable-files.js";
import { withFrozenSource } from "./frozen-source.js";
import { pageAfter, snapshotsInListOrder, volumesInListOrder } from "./list-order.js";
import {
  backingFileKey,
  isLocalId,
  nodeTopologyKey,
  PARTIAL_SUFFIX,
  readonlyKey,
  snapshotImagePath,
  snapshotsDir,
  stateFilePath,
  volumeImagePath,
  volumesDir,
} from "./layout.js";
import { newSnapshotId, newVolumeId } from "./local-ids.js";
import { validateSnapshotParameters, validateVolumeParameters } from "./local-parameters.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import { availableBytes, measurePool } from "./pool-capacity.js";
import { reconcile } from "./reconcile.js";
import { copySparse } from "./sparse-copy.js";
import type { FrozenMount, LocalState, SnapshotRecord, VolumeRecord } from "./state.js";
import { StateStore } from "./state-store.js";
import { NO_METRICS, type DriverMetrics, type PoolReading } from "../../util/metrics.js";
import type { ProgressOptions } from "../../util/progress.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/**
 * Sizes of local volumes: whole MiB (a loop device needs whole 512-byte
 * sectors; MiB keeps partition and filesystem alignment simple), 1 GiB when
 * the CO does not say, at least 1 MiB, at most 16 TiB (ext4's largest file);
 * GetCapacity and CreateVolume also bound them by the pool's free capacity.
 */
export const LOCAL_SIZE_RULES: SizeRules = { minBytes: MiB, maxBytes: 16 * TiB, defaultBytes: GiB, unitBytes: MiB };

const LOCAL_FEATURES: ControllerFeatures = {
  cloneVolume: true,
  snapshots: true,
  expandVolume: true,
  getCapacity: true,
  publishReadonly: true,
  listPublishedNodes: true,
  volumeCondition: true,
  reportsContentSource: true,
};

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && "code" in err && typeof err.code === "string" ? err.code : undefined;
}

/** Host errors a client can act on, as status errors; anything else stays INTERNAL. */
function clientVisible(err: unknown): unknown {
  const message = err instanceof Error ? err.message : String(err);
  if (errnoOf(err) === "ENOSPC" || /No space left on device/.test(message)) {
    return ResourceExhausted("the data dir's filesystem is full: %s", message);
  }
  if (errnoOf(err) === "EFBIG") return OutOfRange("the data dir's filesystem cannot hold a file this large: %s", message);
  return err;
}

/** The controller side of the local backend: sparse image files under --data-dir, metadata in state.json. */
export class LocalController implements ControllerBackend {
  readonly sizeRules = LOCAL_SIZE_RULES;
  readonly features = LOCAL_FEATURES;
  readonly health: HealthCheck;
  readonly #dataDir: string;
  readonly #driverName: string;
  readonly #nodeId: string;
  readonly #overcommitRatio: number;
  readonly #store: StateStore;
  readonly #lock: DataDirLock;
  readonly #log: Logger;
  readonly #progressIntervalMs: number | undefined;

  constructor(options: {
    dataDir: string;
    driverName: string;
    nodeId: string;
    overcommitRatio: number;
    store: StateStore;
    lock: DataDirLock;
    log: Logger;
    /** Time between "still waiting" lines of a long image copy (default: 10 s). */
    progressIntervalMs?: number;
  }) {
    this.#dataDir = options.dataDir;
    this.#driverName = options.driverName;
    this.#nodeId = options.nodeId;
    this.#overcommitRatio = options.overcommitRatio;
    this.#store = options.store;
    this.#lock = options.lock;
    this.#log = options.log;
    this.#progressIntervalMs = options.progressIntervalMs;
    const dataDir = this.#dataDir;
    this.health = {
      name: "local data dir",
      async check() {
        await statfs(dataDir);
        return "ready";
      },
    };
  }

  validateParameters(parameters: StringMap, mutableParameters: StringMap): void {
    validateVolumeParameters(parameters, mutableParameters);
  }

  // ---- volumes -------------------------------------------------------------

  async findVolumeByName(name: string): Promise<Volume | undefined> {
    const record = Object.values(this.#store.state.volumes).find((v) => v.name === name && v.phase === "ready");
    return record ? this.#volume(record) : undefined;
  }

  async getVolume(volumeId: string): Promise<Volume | undefined> {
    const record = this.#readyVolume(volumeId);
    return record ? this.#volume(record, await this.#condition(record)) : undefined;
  }

  async createVolume(spec: NewVolume, signal: AbortSignal): Promise<Volume> {
    signal.throwIfAborted();
    this.#requireReachable(spec.requisite);
    const source = this.#sourceImage(spec);
    const id = newVolumeId();
    const image = volumeImagePath(this.#dataDir, id);
    const partial = `${image}${PARTIAL_SUFFIX}`;

    await this.#store.update(async (draft) => {
      await this.#dropUnfinished(draft, spec.name, "volume");
      if (Object.values(draft.volumes).some((v) => v.name === spec.name && v.phase === "ready"))
        throw AlreadyExists("a volume named %s already exists", spec.name);
      await this.#reserve(draft, spec.sizeBytes, "volume");
      draft.volumes[id] = {
        id,
        name: spec.name,
        phase: "creating",
        sizeBytes: spec.sizeBytes,
        accessTypes: [...spec.accessTypes],
        fsType: spec.fsType,
        parameters: { ...spec.parameters },
        ...(spec.source ? { source: { ...spec.source } } : {}),
        createdAt: new Date().toISOString(),
        listPosition: 0,
        attachments: [],
        frozenMounts: [],
      };
    });
    crashPoint("volume-create:recorded");
    try {
      if (source === undefined) {
        await createSparseFile(partial, spec.sizeBytes);
      } else if (source.kind === "snapshot") {
        // Snapshot images never change: a plain copy is consistent.
        await copySparse(source.image, partial, this.#copyProgress({ volumeId: id }));
      } else {
        await withFrozenSource(
          source.image,
          this.#log,
          (mounts) => this.#recordFrozen("volume", id, mounts),
          () => copySparse(source.image, partial, this.#copyProgress({ volumeId: id })),
        );
      }
      // A restore or clone into a bigger volume: the extra space is a hole; the node grows the filesystem.
      await growFile(partial, spec.sizeBytes);
      crashPoint("volume-create:written");
      await rename(partial, image);
      await fsyncPath(volumesDir(this.#dataDir));
      crashPoint("volume-create:renamed");
      const record = await this.#store.update((draft) => this.#markReady(draft, "volume", id));
      crashPoint("volume-create:ready");
      this.#log.info({ volumeId: id, name: spec.name, sizeBytes: spec.sizeBytes, source: spec.source }, "volume created");
      return this.#volume(record as VolumeRecord);
    } catch (err) {
      await this.#rollBack("volume", id).catch((cleanup: unknown) =>
        this.#log.error(
          { volumeId: id, err: (cleanup as Error).message },
          "could not roll back a failed volume creation; the next start will",
        ),
      );
      throw clientVisible(err);
    }
  }

  async deleteVolume(volumeId: string): Promise<void> {
    const record = isLocalId(volumeId) ? this.#store.state.volumes[volumeId] : undefined;
    // Unknown, or still being created (its id cannot have been handed out yet): nothing to delete.
    if (!record || record.phase === "creating") return;
    if (record.attachments.length > 0) {
      throw FailedPrecondition(
        "volume %s is published to node %s: ControllerUnpublishVolume it first",
        volumeId,
        record.attachments.map((a) => a.nodeId).join(", "),
      );
    }
    const image = volumeImagePath(this.#dataDir, volumeId);
    const devices = await loopDevicesFor(image);
    if (devices.length > 0) {
      throw FailedPrecondition("volume %s is still attached to %s on this node: NodeUnstageVolume it first", volumeId, devices.join(", "));
    }
    await this.#store.update((draft) => {
      const current = draft.volumes[volumeId];
      if (current) draft.volumes[volumeId] = { ...current, phase: "deleting" };
    });
    crashPoint("volume-delete:marked");
    await removeIfExists(image);
    await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    await fsyncPath(volumesDir(this.#dataDir));
    crashPoint("volume-delete:unlinked");
    await this.#store.update((draft) => {
      delete draft.volumes[volumeId];
    });
    this.#log.info({ volumeId }, "volume deleted");
  }

  async publishVolume(request: PublishRequest): Promise<StringMap> {
    const record = this.#readyVolume(request.volumeId);
    if (!record) throw NotFound("volume %s does not exist", request.volumeId);
    if (request.nodeId !== this.#nodeId) {
      throw NotFound("node %s does not exist: local volumes live on node %s only", request.nodeId, this.#nodeId);
    }
    const publishContext = {
      [backingFileKey(this.#driverName)]: volumeImagePath(this.#dataDir, record.id),
      [readonlyKey(this.#driverName)]: String(request.readonly),
    };
    const existing = record.attachments.find((a) => a.nodeId === request.nodeId);
    if (existing) {
      if (existing.readonly !== request.readonly || existing.accessType !== request.accessType) {
        throw AlreadyExists(
          "volume %s is already published to node %s as %s%s; unpublish it before publishing it as %s%s",
          record.id,
          request.nodeId,
          existing.accessType,
          existing.readonly ? " (readonly)" : "",
          request.accessType,
          request.readonly ? " (readonly)" : "",
        );
      }
      return publishContext;
    }
    const elsewhere = record.attachments.filter((a) => a.nodeId !== request.nodeId);
    if (request.singleNode && elsewhere.length > 0) {
      throw FailedPrecondition(
        "volume %s is published to node %s and can be attached to one node at a time: unpublish it there first",
        record.id,
        elsewhere.map((a) => a.nodeId).join(", "),
      );
    }
    await this.#store.update((draft) => {
      const current = draft.volumes[record.id];
      if (!current) throw NotFound("volume %s does not exist", record.id);
      draft.volumes[record.id] = {
        ...current,
        attachments: [...current.attachments, { nodeId: request.nodeId, readonly: request.readonly, accessType: request.accessType }],
      };
    });
    return publishContext;
  }

  async unpublishVolume(volumeId: string, nodeId: string): Promise<void> {
    const record = isLocalId(volumeId) ? this.#store.state.volumes[volumeId] : undefined;
    if (!record || !record.attachments.some((a) => nodeId === "" || a.nodeId === nodeId)) return;
    await this.#store.update((draft) => {
      const current = draft.volumes[volumeId];
      if (current)
        draft.volumes[volumeId] = { ...current, attachments: current.attachments.filter((a) => nodeId !== "" && a.nodeId !== nodeId) };
    });
  }

  async listVolumes(maxEntries: number, startingToken: string): Promise<Page<Volume>> {
    const state = this.#store.state;
    const after = decodePageToken("volumes", startingToken, state.lastListPosition);
    const { page, more } = pageAfter(volumesInListOrder(state), after, maxEntries);
    const last = page.at(-1);
    const items = await Promise.all(page.map(async (record) => this.#volume(record, await this.#condition(record))));
    return { items, nextToken: last && more ? encodePageToken("volumes", last.listPosition) : "" };
  }

  async expandVolume(volumeId: string, sizeBytes: number, signal: AbortSignal): Promise<number> {
    const record = this.#readyVolume(volumeId);
    if (!record) throw NotFound("volume %s does not exist", volumeId);
    if (sizeBytes <= record.sizeBytes) return record.sizeBytes;
    const image = volumeImagePath(this.#dataDir, volumeId);
    try {
      await this.#store.update(async (draft) => {
        const current = draft.volumes[volumeId];
        if (!current || current.phase !== "ready") throw NotFound("volume %s does not exist", volumeId);
        await this.#reserve(draft, sizeBytes - current.sizeBytes, "volume expansion");
        // Grow first and record after: a crash in between leaves a bigger image, whose size the next start adopts.
        await growFile(image, sizeBytes);
        crashPoint("volume-expand:grown");
        // A loop device keeps the size it was attached with until told to re-read it (online expansion).
        for (const device of await loopDevicesFor(image)) await refreshLoopCapacity(device, signal);
        draft.volumes[volumeId] = { ...current, sizeBytes };
      });
    } catch (err) {
      throw clientVisible(err);
    }
    this.#log.info({ volumeId, sizeBytes }, "volume expanded");
    return sizeBytes;
  }

  async availableCapacity(_parameters: StringMap, topology: Topology | undefined): Promise<number> {
    if (topology !== undefined && !this.#onThisNode(topology)) return 0;
    return availableBytes(await measurePool(this.#dataDir, this.#store.state), this.#overcommitRatio);
  }

  /** The pool's figures for metrics: one statfs and one stat per image, only when asked. */
  async poolReading(): Promise<PoolReading> {
    const state = this.#store.state;
    const pool = await measurePool(this.#dataDir, state);
    const usedBytes = pool.volumeAllocatedBytes + pool.snapshotAllocatedBytes;
    return {
      dataDir: this.#dataDir,
      capacityBytes: pool.freeBytes + usedBytes,
      provisionedBytes: pool.volumeLogicalBytes + pool.snapshotAllocatedBytes,
      usedBytes,
      availableBytes: availableBytes(pool, this.#overcommitRatio),
      volumes: Object.values(state.volumes).filter((v) => v.phase === "ready").length,
      snapshots: Object.values(state.snapshots).filter((s) => s.phase === "ready").length,
    };
  }

  #copyProgress(fields: Record<string, string>): ProgressOptions {
    return { log: this.#log, intervalMs: this.#progressIntervalMs, fields };
  }

  // ---- snapshots -----------------------------------------------------------

  async findSnapshotByName(name: string): Promise<Snapshot | undefined> {
    const record = Object.values(this.#store.state.snapshots).find((s) => s.name === name && s.phase === "ready");
    return record ? this.#snapshot(record) : undefined;
  }

  async getSnapshot(snapshotId: string): Promise<Snapshot | undefined> {
    const record = this.#readySnapshot(snapshotId);
    return record ? this.#snapshot(record) : undefined;
  }

  async createSnapshot(spec: NewSnapshot, signal: AbortSignal): Promise<Snapshot> {
    signal.throwIfAborted();
    validateSnapshotParameters(spec.parameters);
    const volume = this.#readyVolume(spec.sourceVolumeId);
    if (!volume) throw NotFound("source volume %s does not exist", spec.sourceVolumeId);
    const id = newSnapshotId();
    const source = volumeImagePath(this.#dataDir, volume.id);
    const image = snapshotImagePath(this.#dataDir, id);
    const partial = `${image}${PARTIAL_SUFFIX}`;

    await this.#store.update(async (draft) => {
      await this.#dropUnfinished(draft, spec.name, "snapshot");
      if (Object.values(draft.snapshots).some((s) => s.name === spec.name && s.phase === "ready"))
        throw AlreadyExists("a snapshot named %s already exists", spec.name);
      // The copy occupies what the volume occupies (less with reflinks): it must fit in the pool and on the disk.
      await this.#reserve(draft, await allocatedBytes(source), "snapshot", true);
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
        this.#log,
        (mounts) => this.#recordFrozen("snapshot", id, mounts),
        async () => {
          crashPoint("snapshot-create:frozen");
          cutAt = new Date();
          await copySparse(source, partial, this.#copyProgress({ snapshotId: id }));
        },
      );
      crashPoint("snapshot-create:written");
      await rename(partial, image);
      await fsyncPath(snapshotsDir(this.#dataDir));
      crashPoint("snapshot-create:renamed");
      const record = await this.#store.update((draft) => {
        const ready = this.#markReady(draft, "snapshot", id) as SnapshotRecord;
        draft.snapshots[id] = { ...ready, createdAt: cutAt.toISOString() };
        return draft.snapshots[id];
      });
      crashPoint("snapshot-create:ready");
      this.#log.info({ snapshotId: id, name: spec.name, sourceVolumeId: volume.id }, "snapshot created");
      return this.#snapshot(record);
    } catch (err) {
      await this.#rollBack("snapshot", id).catch((cleanup: unknown) =>
        this.#log.error({ snapshotId: id, err: (cleanup as Error).message }, "could not roll back a failed snapshot; the next start will"),
      );
      throw clientVisible(err);
    }
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    const record = isLocalId(snapshotId) ? this.#store.state.snapshots[snapshotId] : undefined;
    if (!record || record.phase === "creating") return;
    await this.#store.update((draft) => {
      const current = draft.snapshots[snapshotId];
      if (current) draft.snapshots[snapshotId] = { ...current, phase: "deleting" };
    });
    crashPoint("snapshot-delete:marked");
    const image = snapshotImagePath(this.#dataDir, snapshotId);
    await removeIfExists(image);
    await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    await fsyncPath(snapshotsDir(this.#dataDir));
    crashPoint("snapshot-delete:unlinked");
    await this.#store.update((draft) => {
      delete draft.snapshots[snapshotId];
    });
    this.#log.info({ snapshotId }, "snapshot deleted");
  }

  async listSnapshots(filter: SnapshotFilter, maxEntries: number, startingToken: string): Promise<Page<Snapshot>> {
    const state = this.#store.state;
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
      items: page.map((s) => this.#snapshot(s)),
      nextToken: last && more ? encodePageToken("snapshots", last.listPosition) : "",
    };
  }

  async close(): Promise<void> {
    // Let a metadata write in progress finish before giving up the data dir.
    await this.#store.update(() => undefined).catch(() => undefined);
    await this.#lock.release();
  }

  // ---- helpers -------------------------------------------------------------

  #readyVolume(volumeId: string): VolumeRecord | undefined {
    const record = isLocalId(volumeId) ? this.#store.state.volumes[volumeId] : undefined;
    return record?.phase === "ready" ? record : undefined;
  }

  #readySnapshot(snapshotId: string): SnapshotRecord | undefined {
    const record = isLocalId(snapshotId) ? this.#store.state.snapshots[snapshotId] : undefined;
    return record?.phase === "ready" ? record : undefined;
  }

  #topology(): Topology {
    return { [nodeTopologyKey(this.#driverName)]: this.#nodeId };
  }

  #onThisNode(topology: Topology): boolean {
    return topology[nodeTopologyKey(this.#driverName)] === this.#nodeId;
  }

  /** Volumes live on this node: a requisite list that excludes it cannot be met. */
  #requireReachable(requisite: readonly Topology[]): void {
    if (requisite.length > 0 && !requisite.some((t) => this.#onThisNode(t))) {
      throw ResourceExhausted(
        "cannot provision in the requisite topologies: local volumes live on node %s only (topology %s=%s)",
        this.#nodeId,
        nodeTopologyKey(this.#driverName),
        this.#nodeId,
      );
    }
  }

  #sourceImage(spec: NewVolume): { kind: "snapshot" | "volume"; image: string } | undefined {
    if (spec.source === undefined) return undefined;
    if (spec.source.kind === "snapshot") {
      const snapshot = this.#readySnapshot(spec.source.id);
      if (!snapshot) throw NotFound("source snapshot %s does not exist", spec.source.id);
      if (snapshot.sizeBytes > spec.sizeBytes) {
        throw OutOfRange(
          "source snapshot %s is %s, more than the requested %s",
          snapshot.id,
          formatBytes(snapshot.sizeBytes),
          formatBytes(spec.sizeBytes),
        );
      }
      return { kind: "snapshot", image: snapshotImagePath(this.#dataDir, snapshot.id) };
    }
    const volume = this.#readyVolume(spec.source.id);
    if (!volume) throw NotFound("source volume %s does not exist", spec.source.id);
    if (volume.sizeBytes > spec.sizeBytes) {
      throw OutOfRange(
        "source volume %s is %s, more than the requested %s",
        volume.id,
        formatBytes(volume.sizeBytes),
        formatBytes(spec.sizeBytes),
      );
    }
    return { kind: "volume", image: volumeImagePath(this.#dataDir, volume.id) };
  }

  /**
   * Refuse what the pool cannot hold; `physical` when the bytes are written at
   * once (a snapshot copy) and so must also be free on the disk now. Runs inside
   * a store update, so concurrent creations cannot both take the last bytes.
   */
  async #reserve(draft: LocalState, bytes: number, what: string, physical = false): Promise<void> {
    const pool = await measurePool(this.#dataDir, draft);
    const available = availableBytes(pool, this.#overcommitRatio);
    if (bytes > available || (physical && bytes > pool.freeBytes)) {
      throw ResourceExhausted(
        "not enough capacity for this %s: it needs %s and the pool has %s left (%s free on the data dir's filesystem, overcommit ratio %s)",
        what,
        formatBytes(bytes),
        formatBytes(physical ? Math.min(available, pool.freeBytes) : available),
        formatBytes(pool.freeBytes),
        this.#overcommitRatio,
      );
    }
  }

  /** Leftovers of an earlier attempt with this name that failed and could not be rolled back at the time. */
  async #dropUnfinished(draft: LocalState, name: string, kind: "volume" | "snapshot"): Promise<void> {
    const records = kind === "volume" ? draft.volumes : draft.snapshots;
    for (const record of Object.values(records)) {
      if (record.name !== name || record.phase !== "creating") continue;
      const image = kind === "volume" ? volumeImagePath(this.#dataDir, record.id) : snapshotImagePath(this.#dataDir, record.id);
      await removeIfExists(image);
      await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
      delete records[record.id];
    }
  }

  async #recordFrozen(kind: "volume" | "snapshot", id: string, mounts: readonly FrozenMount[]): Promise<void> {
    await this.#store.update((draft) => {
      if (kind === "volume") {
        const record = draft.volumes[id];
        if (record) draft.volumes[id] = { ...record, frozenMounts: [...mounts] };
      } else {
        const record = draft.snapshots[id];
        if (record) draft.snapshots[id] = { ...record, frozenMounts: [...mounts] };
      }
    });
  }

  #markReady(draft: LocalState, kind: "volume" | "snapshot", id: string): VolumeRecord | SnapshotRecord {
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
  async #rollBack(kind: "volume" | "snapshot", id: string): Promise<void> {
    const image = kind === "volume" ? volumeImagePath(this.#dataDir, id) : snapshotImagePath(this.#dataDir, id);
    await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    await removeIfExists(image);
    await this.#store.update((draft) => {
      if (kind === "volume") delete draft.volumes[id];
      else delete draft.snapshots[id];
    });
  }

  async #condition(record: VolumeRecord): Promise<VolumeCondition> {
    const image = volumeImagePath(this.#dataDir, record.id);
    const stats = await statIfExists(image);
    if (!stats) return { abnormal: true, message: `the volume's image ${image} is missing` };
    if (stats.size < record.sizeBytes) {
      return {
        abnormal: true,
        message: `the volume's image ${image} is ${stats.size} bytes, smaller than the volume's ${record.sizeBytes}`,
      };
    }
    return { abnormal: false, message: "the volume's image is present and complete" };
  }

  #volume(record: VolumeRecord, condition?: VolumeCondition): Volume {
    return {
      id: record.id,
      name: record.name,
      capacityBytes: record.sizeBytes,
      context: {},
      ...(record.source ? { source: record.source } : {}),
      accessibleTopology: [this.#topology()],
      publishedNodeIds: record.attachments.map((a) => a.nodeId),
      parameters: record.parameters,
      ...(condition ? { condition } : {}),
    };
  }

  #snapshot(record: SnapshotRecord): Snapshot {
    return {
      id: record.id,
      name: record.name,
      sourceVolumeId: record.sourceVolumeId,
      sizeBytes: record.sizeBytes,
      createdAt: new Date(record.createdAt),
      readyToUse: true,
    };
  }
}

/** Refuse to start on a data dir that has images but no metadata: it would lose track of them. */
async function requireNoImages(dataDir: string): Promise<void> {
  for (const dir of [volumesDir(dataDir), snapshotsDir(dataDir)]) {
    const images = (await readdir(dir)).filter((n) => n.endsWith(".img"));
    if (images.length > 0) {
      throw new Error(
        `${dir} holds ${images.length} image file(s) but ${stateFilePath(dataDir)} is missing: refusing to start without the metadata that describes them; restore it or move the data dir aside`,
      );
    }
  }
}

/**
 * Open the data dir for the controller: take its lock (a second process
 * refuses to start), load the metadata and reconcile what a crash left.
 */
/** CSI topology values: at most 63 characters, alphanumeric at both ends, '-', '_' and '.' between. */
const TOPOLOGY_VALUE = /^[A-Za-z0-9](?:[-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;

export async function openLocalController(
  config: Config,
  log: Logger,
  metrics: DriverMetrics = NO_METRICS,
  options: { progressIntervalMs?: number } = {},
): Promise<ControllerBackend> {
  if (!TOPOLOGY_VALUE.test(config.nodeId)) {
    throw new Error(
      `node id ${JSON.stringify(config.nodeId)} cannot be the value of the topology key ${nodeTopologyKey(config.driverName)}: ` +
        "use at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (set --node-id)",
    );
  }
  const dataDir = resolve(config.local.dataDir);
  const backendLog = log.child({ backend: "local", dataDir });
  await mkdir(dataDir, { recursive: true, mode: 0o750 });
  const lock = await DataDirLock.acquire(dataDir);
  try {
    await mkdir(volumesDir(dataDir), { recursive: true, mode: 0o750 });
    await mkdir(snapshotsDir(dataDir), { recursive: true, mode: 0o750 });
    const store = await StateStore.open(stateFilePath(dataDir), { allowFresh: () => requireNoImages(dataDir) });
    await reconcile(store, dataDir, backendLog);
    const controller = new LocalController({
      dataDir,
      driverName: config.driverName,
      nodeId: config.nodeId,
      overcommitRatio: config.local.overcommitRatio,
      store,
      lock,
      log: backendLog,
      progressIntervalMs: options.progressIntervalMs,
    });
    metrics.addPoolSource(() => controller.poolReading());
    backendLog.info(
      { volumes: Object.keys(store.state.volumes).length, snapshots: Object.keys(store.state.snapshots).length, nodeId: config.nodeId },
      "local backend ready",
    );
    return controller;
  } catch (err) {
    await lock.release();
    throw err;
  }
}
