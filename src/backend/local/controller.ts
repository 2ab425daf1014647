import { mkdir, readdir, rename, statfs } from "node:fs/promises";
import { resolve } from "node:path";
import type { Config } from "../../config.js";
import { AlreadyExists, FailedPrecondition, NotFound, OutOfRange, ResourceExhausted } from "../../errors.js";
import type { Logger } from "../../log/logger.js";
import { loopDevicesFor, refreshLoopCapacity } from "../../mounter/loop.js";
import { formatBytes } from "../../util/bytes.js";
import { type DriverMetrics, NO_METRICS, type PoolReading } from "../../util/metrics.js";
import type {
  ControllerBackend,
  ControllerFeatures,
  GroupSnapshotBackend,
  NewSnapshot,
  NewVolume,
  Page,
  PublishRequest,
  SizeRules,
  Snapshot,
  SnapshotFilter,
  SnapshotMetadataBackend,
  StringMap,
  Topology,
  Volume,
  VolumeCondition,
} from "../backend.js";
import type { HealthCheck } from "../health-check.js";
import { crashPoint } from "./crash-points.js";
import { DataDirLock } from "./data-dir-lock.js";
import { allocatedBytes, createSparseFile, fsyncPath, growFile, removeIfExists, statIfExists } from "./durable-files.js";
import { withFrozenSource } from "./frozen-source.js";
import { clientVisible } from "./host-errors.js";
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
import { pageAfter, volumesInListOrder } from "./list-order.js";
import { newVolumeId, requireOnNode } from "./local-ids.js";
import { validateVolumeParameters } from "./local-parameters.js";
import { allocateImage, type Provisioning, provisioningOf, releaseUnusedBlocks } from "./provisioning.js";
import { decodePageToken, encodePageToken } from "./page-token.js";
import { LocalGroupSnapshots } from "./group-snapshots.js";
import { LocalPool } from "./pool.js";
import { availableBytes, measurePool, poolReading } from "./pool-capacity.js";
import { reconcile } from "./reconcile.js";
import { LocalSnapshotMetadata } from "./snapshot-metadata.js";
import { LocalSnapshots } from "./snapshots.js";
import { copySparse } from "./sparse-copy.js";
import type { VolumeRecord } from "./state.js";
import { StateStore } from "./state-store.js";

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

export const LOCAL_FEATURES: ControllerFeatures = {
  cloneVolume: true,
  snapshots: true,
  expandVolume: true,
  getCapacity: true,
  publishReadonly: true,
  listPublishedNodes: true,
  volumeCondition: true,
  reportsContentSource: true,
  modifyVolume: true,
};

/**
 * The controller side of the local backend: sparse image files under --data-dir, metadata in state.json.
 * Volumes are here; snapshots are in snapshots.ts, the steps both share in pool.ts, capacity in pool-capacity.ts.
 */
export class LocalController implements ControllerBackend {
  readonly sizeRules = LOCAL_SIZE_RULES;
  readonly features = LOCAL_FEATURES;
  readonly health: HealthCheck;
  readonly snapshotMetadata: SnapshotMetadataBackend;
  readonly groupSnapshots: GroupSnapshotBackend;
  readonly #pool: LocalPool;
  readonly #snapshots: LocalSnapshots;
  readonly #lock: DataDirLock;
  readonly #nodeDeployment: boolean;

  constructor(options: {
    dataDir: string;
    driverName: string;
    nodeId: string;
    /**
     * One instance per node: nothing calls ControllerUnpublishVolume, so the
     * attachments a single-node layout recorded no longer hold a volume back.
     */
    nodeDeployment?: boolean;
    overcommitRatio: number;
    store: StateStore;
    lock: DataDirLock;
    log: Logger;
    /** Time between "still waiting" lines of a long image copy (default: 10 s). */
    progressIntervalMs?: number;
  }) {
    this.#pool = new LocalPool(options);
    this.#snapshots = new LocalSnapshots(this.#pool);
    this.snapshotMetadata = new LocalSnapshotMetadata(this.#pool);
    this.groupSnapshots = new LocalGroupSnapshots(this.#pool);
    this.#lock = options.lock;
    this.#nodeDeployment = options.nodeDeployment ?? false;
    const dataDir = options.dataDir;
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
    const record = Object.values(this.#pool.store.state.volumes).find((v) => v.name === name && v.phase === "ready");
    return record ? this.#volume(record) : undefined;
  }

  async getVolume(volumeId: string): Promise<Volume | undefined> {
    const record = this.#pool.readyVolume(volumeId);
    return record ? this.#volume(record, await this.#condition(record)) : undefined;
  }

  async createVolume(spec: NewVolume, signal: AbortSignal): Promise<Volume> {
    signal.throwIfAborted();
    this.#requireReachable(spec.requisite);
    const source = this.#sourceImage(spec);
    const id = newVolumeId(this.#pool.nodeId);
    const image = volumeImagePath(this.#pool.dataDir, id);
    const partial = `${image}${PARTIAL_SUFFIX}`;
    const thick =
      (provisioningOf(spec.mutableParameters, "mutable_parameters") ?? provisioningOf(spec.parameters, "parameters")) === "thick";

    await this.#pool.store.update(async (draft) => {
      await this.#pool.dropUnfinished(draft, spec.name, "volume");
      if (Object.values(draft.volumes).some((v) => v.name === spec.name && v.phase === "ready"))
        throw AlreadyExists("a volume named %s already exists", spec.name);
      // A thick volume takes its whole size from the disk now.
      await this.#pool.reserve(draft, spec.sizeBytes, thick ? "thick volume" : "volume", thick);
      draft.volumes[id] = {
        id,
        name: spec.name,
        phase: "creating",
        sizeBytes: spec.sizeBytes,
        accessTypes: [...spec.accessTypes],
        fsType: spec.fsType,
        parameters: { ...spec.parameters },
        ...(thick ? { provisioning: "thick" as const } : {}),
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
        await copySparse(source.image, partial, this.#pool.copyProgress({ volumeId: id }));
      } else {
        await withFrozenSource(
          source.image,
          this.#pool.log,
          (mounts) => this.#pool.recordFrozen("volume", id, mounts),
          () => copySparse(source.image, partial, this.#pool.copyProgress({ volumeId: id })),
        );
      }
      // A restore or clone into a bigger volume: the extra space is a hole; the node grows the filesystem.
      await growFile(partial, spec.sizeBytes);
      if (thick) await allocateImage(partial, spec.sizeBytes);
      crashPoint("volume-create:written");
      await rename(partial, image);
      await fsyncPath(volumesDir(this.#pool.dataDir));
      crashPoint("volume-create:renamed");
      const record = await this.#pool.store.update((draft) => this.#pool.markReady(draft, "volume", id));
      crashPoint("volume-create:ready");
      this.#pool.log.info({ volumeId: id, name: spec.name, sizeBytes: spec.sizeBytes, source: spec.source }, "volume created");
      return this.#volume(record as VolumeRecord);
    } catch (err) {
      await this.#pool
        .rollBack("volume", id)
        .catch((cleanup: unknown) =>
          this.#pool.log.error(
            { volumeId: id, err: (cleanup as Error).message },
            "could not roll back a failed volume creation; the next start will",
          ),
        );
      throw clientVisible(err);
    }
  }

  async deleteVolume(volumeId: string): Promise<void> {
    const record = isLocalId(volumeId) ? this.#pool.store.state.volumes[volumeId] : undefined;
    // Another node's volume is not "already gone": answering OK would let the CO forget it while it still uses space there.
    if (!record) requireOnNode(volumeId, "volume", this.#pool.nodeId);
    // Unknown, or still being created (its id cannot have been handed out yet): nothing to delete.
    if (!record || record.phase === "creating") return;
    // A volume in use on this node is still refused below (its loop device); with
    // --node-deployment, attachments are leftovers of the single-node layout.
    if (record.attachments.length > 0 && !this.#nodeDeployment) {
      throw FailedPrecondition(
        "volume %s is published to node %s: ControllerUnpublishVolume it first",
        volumeId,
        record.attachments.map((a) => a.nodeId).join(", "),
      );
    }
    const image = volumeImagePath(this.#pool.dataDir, volumeId);
    const devices = await loopDevicesFor(image);
    if (devices.length > 0) {
      throw FailedPrecondition("volume %s is still attached to %s on this node: NodeUnstageVolume it first", volumeId, devices.join(", "));
    }
    await this.#pool.store.update((draft) => {
      const current = draft.volumes[volumeId];
      if (current) draft.volumes[volumeId] = { ...current, phase: "deleting" };
    });
    crashPoint("volume-delete:marked");
    await removeIfExists(image);
    await removeIfExists(`${image}${PARTIAL_SUFFIX}`);
    await fsyncPath(volumesDir(this.#pool.dataDir));
    crashPoint("volume-delete:unlinked");
    await this.#pool.store.update((draft) => {
      delete draft.volumes[volumeId];
    });
    this.#pool.log.info({ volumeId }, "volume deleted");
  }

  async publishVolume(request: PublishRequest): Promise<StringMap> {
    const record = this.#pool.readyVolume(request.volumeId);
    if (!record) throw NotFound("volume %s does not exist", request.volumeId);
    if (request.nodeId !== this.#pool.nodeId) {
      throw NotFound("node %s does not exist: local volumes live on node %s only", request.nodeId, this.#pool.nodeId);
    }
    const publishContext = {
      [backingFileKey(this.#pool.driverName)]: volumeImagePath(this.#pool.dataDir, record.id),
      [readonlyKey(this.#pool.driverName)]: String(request.readonly),
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
    await this.#pool.store.update((draft) => {
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
    const record = isLocalId(volumeId) ? this.#pool.store.state.volumes[volumeId] : undefined;
    if (!record) requireOnNode(volumeId, "volume", this.#pool.nodeId);
    if (!record?.attachments.some((a) => nodeId === "" || a.nodeId === nodeId)) return;
    await this.#pool.store.update((draft) => {
      const current = draft.volumes[volumeId];
      if (current)
        draft.volumes[volumeId] = { ...current, attachments: current.attachments.filter((a) => nodeId !== "" && a.nodeId !== nodeId) };
    });
  }

  async listVolumes(maxEntries: number, startingToken: string): Promise<Page<Volume>> {
    const state = this.#pool.store.state;
    const after = decodePageToken("volumes", startingToken, state.lastListPosition);
    const { page, more } = pageAfter(volumesInListOrder(state), after, maxEntries);
    const last = page.at(-1);
    const items = await Promise.all(page.map(async (record) => this.#volume(record, await this.#condition(record))));
    return { items, nextToken: last && more ? encodePageToken("volumes", last.listPosition) : "" };
  }

  async expandVolume(volumeId: string, sizeBytes: number, signal: AbortSignal): Promise<number> {
    const record = this.#pool.readyVolume(volumeId);
    if (!record) throw NotFound("volume %s does not exist", volumeId);
    if (sizeBytes <= record.sizeBytes) return record.sizeBytes;
    const image = volumeImagePath(this.#pool.dataDir, volumeId);
    try {
      await this.#pool.store.update(async (draft) => {
        const current = draft.volumes[volumeId];
        if (current?.phase !== "ready") throw NotFound("volume %s does not exist", volumeId);
        const thick = current.provisioning === "thick";
        await this.#pool.reserve(draft, sizeBytes - current.sizeBytes, thick ? "thick volume expansion" : "volume expansion", thick);
        // Grow first and record after: a crash in between leaves a bigger image, whose size the next start adopts.
        await growFile(image, sizeBytes);
        if (thick) await allocateImage(image, sizeBytes);
        crashPoint("volume-expand:grown");
        // A loop device keeps the size it was attached with until told to re-read it (online expansion).
        for (const device of await loopDevicesFor(image)) await refreshLoopCapacity(device, signal);
        draft.volumes[volumeId] = { ...current, sizeBytes };
      });
    } catch (err) {
      throw clientVisible(err);
    }
    this.#pool.log.info({ volumeId, sizeBytes }, "volume expanded");
    return sizeBytes;
  }

  /**
   * ControllerModifyVolume: `provisioning` thin or thick (provisioning.ts), online. Thick allocates first and
   * records after; thin records first and releases after: a crash in between leaves a volume that holds more
   * than its record says, never less, and the retry finishes the job.
   */
  async modifyVolume(volumeId: string, mutableParameters: StringMap, signal: AbortSignal): Promise<void> {
    validateVolumeParameters({}, mutableParameters);
    const wanted: Provisioning | undefined = provisioningOf(mutableParameters, "mutable_parameters");
    const record = this.#pool.readyVolume(volumeId);
    if (!record) throw NotFound("volume %s does not exist", volumeId);
    if (wanted === undefined) return;
    const image = volumeImagePath(this.#pool.dataDir, volumeId);
    try {
      if (wanted === "thick") {
        await this.#pool.store.update(async (draft) => {
          const current = draft.volumes[volumeId];
          if (current?.phase !== "ready") throw NotFound("volume %s does not exist", volumeId);
          if (current.provisioning === "thick") return;
          // What is not allocated yet must be free on the disk now, and the other volumes' promises kept.
          const missing = Math.max(0, current.sizeBytes - (await allocatedBytes(image)));
          await this.#pool.reserve(
            { ...draft, volumes: { ...draft.volumes, [volumeId]: { ...current, provisioning: "thick" } } },
            missing,
            "thick volume",
            true,
          );
          await allocateImage(image, current.sizeBytes, signal);
          crashPoint("volume-modify:allocated");
          draft.volumes[volumeId] = { ...current, provisioning: "thick" };
        });
      } else {
        await this.#pool.store.update((draft) => {
          const current = draft.volumes[volumeId];
          if (current?.phase !== "ready") throw NotFound("volume %s does not exist", volumeId);
          const { provisioning: _thick, ...thin } = current;
          draft.volumes[volumeId] = thin;
        });
        crashPoint("volume-modify:recorded");
        await releaseUnusedBlocks(image, this.#pool.log, signal);
      }
    } catch (err) {
      throw clientVisible(err);
    }
    this.#pool.log.info({ volumeId, provisioning: wanted, allocatedBytes: await allocatedBytes(image) }, "volume modified");
  }

  async availableCapacity(_parameters: StringMap, topology: Topology | undefined): Promise<number> {
    if (topology !== undefined && !this.#pool.onThisNode(topology)) return 0;
    return availableBytes(await measurePool(this.#pool.dataDir, this.#pool.store.state), this.#pool.overcommitRatio);
  }

  /** The pool's figures for metrics: one statfs and one stat per image, only when asked. */
  async poolReading(): Promise<PoolReading> {
    return poolReading(this.#pool.dataDir, this.#pool.store.state, this.#pool.overcommitRatio);
  }

  // ---- snapshots -----------------------------------------------------------

  findSnapshotByName(name: string): Promise<Snapshot | undefined> {
    return this.#snapshots.findByName(name);
  }

  getSnapshot(snapshotId: string): Promise<Snapshot | undefined> {
    return this.#snapshots.get(snapshotId);
  }

  createSnapshot(spec: NewSnapshot, signal: AbortSignal): Promise<Snapshot> {
    return this.#snapshots.create(spec, signal);
  }

  deleteSnapshot(snapshotId: string): Promise<void> {
    return this.#snapshots.delete(snapshotId);
  }

  listSnapshots(filter: SnapshotFilter, maxEntries: number, startingToken: string): Promise<Page<Snapshot>> {
    return this.#snapshots.list(filter, maxEntries, startingToken);
  }

  async close(): Promise<void> {
    // Let a metadata write in progress finish before giving up the data dir.
    await this.#pool.store.update(() => undefined).catch(() => undefined);
    await this.#lock.release();
  }

  // ---- volume helpers ------------------------------------------------------

  /** Volumes live on this node: a requisite list that excludes it cannot be met. */
  #requireReachable(requisite: readonly Topology[]): void {
    if (requisite.length > 0 && !requisite.some((t) => this.#pool.onThisNode(t))) {
      throw ResourceExhausted(
        "cannot provision in the requisite topologies: local volumes live on node %s only (topology %s=%s)",
        this.#pool.nodeId,
        nodeTopologyKey(this.#pool.driverName),
        this.#pool.nodeId,
      );
    }
  }

  #sourceImage(spec: NewVolume): { kind: "snapshot" | "volume"; image: string } | undefined {
    if (spec.source === undefined) return undefined;
    if (spec.source.kind === "snapshot") {
      const snapshot = this.#pool.readySnapshot(spec.source.id, "source snapshot");
      if (!snapshot) throw NotFound("source snapshot %s does not exist", spec.source.id);
      if (snapshot.sizeBytes > spec.sizeBytes) {
        throw OutOfRange(
          "source snapshot %s is %s, more than the requested %s",
          snapshot.id,
          formatBytes(snapshot.sizeBytes),
          formatBytes(spec.sizeBytes),
        );
      }
      return { kind: "snapshot", image: snapshotImagePath(this.#pool.dataDir, snapshot.id) };
    }
    const volume = this.#pool.readyVolume(spec.source.id, "source volume");
    if (!volume) throw NotFound("source volume %s does not exist", spec.source.id);
    if (volume.sizeBytes > spec.sizeBytes) {
      throw OutOfRange(
        "source volume %s is %s, more than the requested %s",
        volume.id,
        formatBytes(volume.sizeBytes),
        formatBytes(spec.sizeBytes),
      );
    }
    return { kind: "volume", image: volumeImagePath(this.#pool.dataDir, volume.id) };
  }

  async #condition(record: VolumeRecord): Promise<VolumeCondition> {
    const image = volumeImagePath(this.#pool.dataDir, record.id);
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
      accessibleTopology: [this.#pool.topology()],
      publishedNodeIds: record.attachments.map((a) => a.nodeId),
      parameters: record.parameters,
      ...(condition ? { condition } : {}),
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

/** CSI topology values: at most 63 characters, alphanumeric at both ends, '-', '_' and '.' between. */
const TOPOLOGY_VALUE = /^[A-Za-z0-9](?:[-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;

/**
 * Open the data dir for the controller: take its lock (a second process
 * refuses to start), load the metadata and reconcile what a crash left.
 */
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
      nodeDeployment: config.nodeDeployment,
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
