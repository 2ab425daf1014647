/**
 * An in-memory ControllerBackend that keeps the interface's contract
 * (src/backend/backend.ts) the way the real backends do: stable listing order
 * with tokens it can tell apart from foreign ones, idempotent deletes and
 * detaches, FAILED_PRECONDITION for deleting an attached volume, single-node
 * attachment, capacity and topology limits. Tests drive the backend-agnostic
 * controller service over it without root, loop devices or an API.
 *
 * Beyond the contract it lets a test see which methods were called, hold a
 * method's calls at a gate, and make the next call of a method fail.
 */
import type {
  ContentSource,
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
} from "../../src/backend/backend.js";
import {
  Aborted,
  AlreadyExists,
  FailedPrecondition,
  InvalidArgument,
  NotFound,
  OutOfRange,
  ResourceExhausted,
} from "../../src/csi/errors.js";
import type { HealthCheck } from "../../src/driver/readiness.js";
import { CallGate } from "./call-gate.js";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const FAKE_TOPOLOGY_KEY = "fake.csi.example.com/zone";

/** Parameter keys every fake accepts; the sidecars add csi.storage.k8s.io/* keys too. */
const PASSED_THROUGH_PREFIX = "csi.storage.k8s.io/";

export type ControllerMethod = Exclude<keyof ControllerBackend, "sizeRules" | "features" | "health">;

export interface MemoryControllerOptions {
  readonly sizeRules?: Partial<SizeRules>;
  readonly features?: Partial<ControllerFeatures>;
  /** Nodes volumes can be attached to. */
  readonly nodes?: readonly string[];
  /** Zones volumes can be created in; the first one is used when the request has no topology preference. */
  readonly zones?: readonly string[];
  /** Bytes of volumes the pool holds in all. */
  readonly capacityBytes?: number;
  /** Volume parameter keys accepted besides csi.storage.k8s.io/*. */
  readonly parameterKeys?: readonly string[];
  /**
   * Whether volumes it returns carry their creation parameters and source
   * (default true). False behaves like a cloud API that does not return them.
   */
  readonly reportsCreationDetails?: boolean;
  readonly health?: HealthCheck;
}

interface StoredVolume {
  readonly position: number;
  volume: Volume;
  attachments: { readonly nodeId: string; readonly readonly: boolean; readonly accessType: string }[];
}

interface StoredSnapshot {
  readonly position: number;
  readonly snapshot: Snapshot;
}

export const DEFAULT_SIZE_RULES: SizeRules = { minBytes: MiB, maxBytes: 16 * GiB, defaultBytes: GiB, unitBytes: MiB };

export const ALL_FEATURES: ControllerFeatures = {
  cloneVolume: true,
  snapshots: true,
  expandVolume: true,
  getCapacity: true,
  publishReadonly: true,
  listPublishedNodes: true,
  volumeCondition: true,
  reportsContentSource: true,
};

export class MemoryControllerBackend implements ControllerBackend {
  readonly sizeRules: SizeRules;
  readonly features: ControllerFeatures;
  readonly health?: HealthCheck;
  /** Every backend method called, in order. */
  readonly calls: ControllerMethod[] = [];
  /** What createVolume was asked for, in order. */
  readonly created: NewVolume[] = [];
  readonly #reportsCreationDetails: boolean;
  readonly #nodes: readonly string[];
  readonly #zones: readonly string[];
  readonly #capacityBytes: number;
  readonly #parameterKeys: ReadonlySet<string>;
  readonly #volumes = new Map<string, StoredVolume>();
  readonly #snapshots = new Map<string, StoredSnapshot>();
  readonly #gates = new Map<ControllerMethod, CallGate>();
  readonly #failures = new Map<ControllerMethod, unknown>();
  readonly #conditions = new Map<string, VolumeCondition>();
  #position = 0;
  #closed = false;

  constructor(options: MemoryControllerOptions = {}) {
    this.sizeRules = { ...DEFAULT_SIZE_RULES, ...options.sizeRules };
    this.features = { ...ALL_FEATURES, ...options.features };
    this.#nodes = options.nodes ?? ["node-1", "node-2"];
    this.#zones = options.zones ?? ["zone-a"];
    this.#capacityBytes = options.capacityBytes ?? 64 * GiB;
    this.#parameterKeys = new Set(options.parameterKeys ?? ["type"]);
    this.#reportsCreationDetails = options.reportsCreationDetails ?? true;
    if (options.health) this.health = options.health;
  }

  // ---- test controls ---------------------------------------------------------

  /** Hold every call of `method` at a gate until the test releases it. */
  gate(method: ControllerMethod): CallGate {
    const gate = new CallGate();
    this.#gates.set(method, gate);
    return gate;
  }

  /** The next call of `method` throws `error` (once). */
  failNext(method: ControllerMethod, error: unknown): void {
    this.#failures.set(method, error);
  }

  /** Report a volume's health as the backend sees it. */
  setCondition(volumeId: string, condition: VolumeCondition): void {
    this.#conditions.set(volumeId, condition);
  }

  /** Make a snapshot not ready to use (as a cloud snapshot is while it is being taken). */
  markSnapshotPending(snapshotId: string): void {
    const stored = this.#snapshots.get(snapshotId);
    if (!stored) throw new Error(`no snapshot ${snapshotId}`);
    this.#snapshots.set(snapshotId, { ...stored, snapshot: { ...stored.snapshot, readyToUse: false } });
  }

  volumeCount(): number {
    return this.#volumes.size;
  }

  snapshotCount(): number {
    return this.#snapshots.size;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---- ControllerBackend -------------------------------------------------------

  validateParameters(parameters: StringMap, mutableParameters: StringMap): void {
    this.#record("validateParameters");
    const unknown = Object.keys(parameters).filter((k) => !k.startsWith(PASSED_THROUGH_PREFIX) && !this.#parameterKeys.has(k));
    if (unknown.length > 0) throw InvalidArgument("unknown parameters %s", unknown.map((k) => JSON.stringify(k)).join(", "));
    const mutable = Object.keys(mutableParameters);
    if (mutable.length > 0) throw InvalidArgument("unsupported mutable parameters %s", mutable.map((k) => JSON.stringify(k)).join(", "));
  }

  async findVolumeByName(name: string, signal: AbortSignal): Promise<Volume | undefined> {
    await this.#enter("findVolumeByName", signal);
    for (const stored of this.#volumes.values()) if (stored.volume.name === name) return this.#view(stored);
    return undefined;
  }

  async getVolume(volumeId: string, signal: AbortSignal): Promise<Volume | undefined> {
    await this.#enter("getVolume", signal);
    const stored = this.#volumes.get(volumeId);
    return stored ? this.#view(stored) : undefined;
  }

  async createVolume(spec: NewVolume, signal: AbortSignal): Promise<Volume> {
    await this.#enter("createVolume", signal);
    for (const stored of this.#volumes.values()) {
      if (stored.volume.name === spec.name) throw AlreadyExists("a volume named %s already exists", spec.name);
    }
    if (spec.source) this.#checkSource(spec.source, spec.sizeBytes);
    const zone = this.#zoneFor(spec.requisite, spec.preferred);
    this.#reserve(spec.sizeBytes);
    this.created.push(spec);
    const id = `vol-${String(++this.#position).padStart(4, "0")}`;
    const volume: Volume = {
      id,
      name: spec.name,
      capacityBytes: spec.sizeBytes,
      context: { zone },
      accessibleTopology: [{ [FAKE_TOPOLOGY_KEY]: zone }],
      publishedNodeIds: [],
      ...(this.#reportsCreationDetails ? { parameters: { ...spec.parameters }, ...(spec.source ? { source: spec.source } : {}) } : {}),
    };
    const stored: StoredVolume = { position: this.#position, volume, attachments: [] };
    this.#volumes.set(id, stored);
    return this.#view(stored);
  }

  async deleteVolume(volumeId: string, signal: AbortSignal): Promise<void> {
    await this.#enter("deleteVolume", signal);
    const stored = this.#volumes.get(volumeId);
    if (!stored) return;
    if (stored.attachments.length > 0) {
      throw FailedPrecondition(
        "volume %s is attached to %s: unpublish it first",
        volumeId,
        stored.attachments.map((a) => a.nodeId).join(", "),
      );
    }
    this.#volumes.delete(volumeId);
  }

  async publishVolume(request: PublishRequest, signal: AbortSignal): Promise<StringMap> {
    await this.#enter("publishVolume", signal);
    const stored = this.#volumes.get(request.volumeId);
    if (!stored) throw NotFound("volume %s does not exist", request.volumeId);
    if (!this.#nodes.includes(request.nodeId)) throw NotFound("node %s does not exist", request.nodeId);
    const publishContext = { devicePath: `/dev/fake/${stored.volume.id}` };
    const existing = stored.attachments.find((a) => a.nodeId === request.nodeId);
    if (existing) {
      if (existing.readonly !== request.readonly || existing.accessType !== request.accessType) {
        throw AlreadyExists("volume %s is already published to node %s otherwise", request.volumeId, request.nodeId);
      }
      return publishContext;
    }
    if (request.singleNode && stored.attachments.length > 0) {
      throw FailedPrecondition(
        "volume %s is published to node %s: unpublish it there first",
        request.volumeId,
        stored.attachments[0]?.nodeId,
      );
    }
    stored.attachments.push({ nodeId: request.nodeId, readonly: request.readonly, accessType: request.accessType });
    return publishContext;
  }

  async unpublishVolume(volumeId: string, nodeId: string, signal: AbortSignal): Promise<void> {
    await this.#enter("unpublishVolume", signal);
    const stored = this.#volumes.get(volumeId);
    if (!stored) return;
    stored.attachments = stored.attachments.filter((a) => nodeId !== "" && a.nodeId !== nodeId);
  }

  async listVolumes(maxEntries: number, startingToken: string, signal: AbortSignal): Promise<Page<Volume>> {
    await this.#enter("listVolumes", signal);
    return this.#page("volumes", [...this.#volumes.values()], maxEntries, startingToken, (s) => this.#view(s));
  }

  async expandVolume(volumeId: string, sizeBytes: number, signal: AbortSignal): Promise<number> {
    await this.#enter("expandVolume", signal);
    const stored = this.#volumes.get(volumeId);
    if (!stored) throw NotFound("volume %s does not exist", volumeId);
    if (sizeBytes > stored.volume.capacityBytes) {
      this.#reserve(sizeBytes - stored.volume.capacityBytes);
      stored.volume = { ...stored.volume, capacityBytes: sizeBytes };
    }
    return stored.volume.capacityBytes;
  }

  async availableCapacity(_parameters: StringMap, topology: Topology | undefined, signal: AbortSignal): Promise<number> {
    await this.#enter("availableCapacity", signal);
    const zone = topology?.[FAKE_TOPOLOGY_KEY];
    if (zone !== undefined && !this.#zones.includes(zone)) return 0;
    return this.#capacityBytes - this.#usedBytes();
  }

  async findSnapshotByName(name: string, _sourceVolumeId: string, signal: AbortSignal): Promise<Snapshot | undefined> {
    await this.#enter("findSnapshotByName", signal);
    for (const stored of this.#snapshots.values()) if (stored.snapshot.name === name) return stored.snapshot;
    return undefined;
  }

  async getSnapshot(snapshotId: string, signal: AbortSignal): Promise<Snapshot | undefined> {
    await this.#enter("getSnapshot", signal);
    return this.#snapshots.get(snapshotId)?.snapshot;
  }

  async createSnapshot(spec: NewSnapshot, signal: AbortSignal): Promise<Snapshot> {
    await this.#enter("createSnapshot", signal);
    const source = this.#volumes.get(spec.sourceVolumeId);
    if (!source) throw NotFound("source volume %s does not exist", spec.sourceVolumeId);
    for (const stored of this.#snapshots.values()) {
      if (stored.snapshot.name === spec.name) throw AlreadyExists("a snapshot named %s already exists", spec.name);
    }
    const id = `snap-${String(++this.#position).padStart(4, "0")}`;
    const snapshot: Snapshot = {
      id,
      name: spec.name,
      sourceVolumeId: spec.sourceVolumeId,
      sizeBytes: source.volume.capacityBytes,
      createdAt: new Date(),
      readyToUse: true,
    };
    this.#snapshots.set(id, { position: this.#position, snapshot });
    return snapshot;
  }

  async deleteSnapshot(snapshotId: string, signal: AbortSignal): Promise<void> {
    await this.#enter("deleteSnapshot", signal);
    this.#snapshots.delete(snapshotId);
  }

  async listSnapshots(filter: SnapshotFilter, maxEntries: number, startingToken: string, signal: AbortSignal): Promise<Page<Snapshot>> {
    await this.#enter("listSnapshots", signal);
    const matching = [...this.#snapshots.values()].filter(
      ({ snapshot }) =>
        (filter.snapshotId === undefined || snapshot.id === filter.snapshotId) &&
        (filter.sourceVolumeId === undefined || snapshot.sourceVolumeId === filter.sourceVolumeId),
    );
    return this.#page("snapshots", matching, maxEntries, startingToken, (s) => s.snapshot);
  }

  async close(): Promise<void> {
    this.#record("close");
    this.#closed = true;
  }

  // ---- helpers -----------------------------------------------------------------

  #record(method: ControllerMethod): void {
    this.calls.push(method);
    const failure = this.#failures.get(method);
    if (failure !== undefined) {
      this.#failures.delete(method);
      throw failure;
    }
  }

  async #enter(method: ControllerMethod, signal: AbortSignal): Promise<void> {
    if (this.#closed) throw new Error(`${method} called after close`);
    this.#record(method);
    await this.#gates.get(method)?.pass(signal);
    signal.throwIfAborted();
  }

  #view(stored: StoredVolume): Volume {
    const condition = this.#conditions.get(stored.volume.id);
    return {
      ...stored.volume,
      publishedNodeIds: stored.attachments.map((a) => a.nodeId),
      ...(condition ? { condition } : {}),
    };
  }

  #usedBytes(): number {
    let used = 0;
    for (const stored of this.#volumes.values()) used += stored.volume.capacityBytes;
    return used;
  }

  #reserve(bytes: number): void {
    const left = this.#capacityBytes - this.#usedBytes();
    if (bytes > left) throw ResourceExhausted("not enough capacity: %d bytes wanted, %d left", bytes, left);
  }

  #checkSource(source: ContentSource, sizeBytes: number): void {
    const sourceBytes =
      source.kind === "snapshot" ? this.#snapshots.get(source.id)?.snapshot.sizeBytes : this.#volumes.get(source.id)?.volume.capacityBytes;
    if (sourceBytes === undefined) throw NotFound("source %s %s does not exist", source.kind, source.id);
    if (sourceBytes > sizeBytes) throw OutOfRange("source %s %s is larger than %d bytes", source.kind, source.id, sizeBytes);
  }

  #zoneFor(requisite: readonly Topology[], preferred: readonly Topology[]): string {
    const zoneOf = (t: Topology) => t[FAKE_TOPOLOGY_KEY];
    for (const wanted of [...preferred, ...requisite]) {
      const zone = zoneOf(wanted);
      if (zone !== undefined && this.#zones.includes(zone)) return zone;
    }
    if (requisite.length > 0) throw ResourceExhausted("none of the requisite topologies is a zone of this backend");
    return this.#zones[0] ?? "zone-a";
  }

  /** Items after the token's position, in creation order; tokens name the list they belong to. */
  #page<S extends { readonly position: number }, T>(
    list: "volumes" | "snapshots",
    stored: readonly S[],
    maxEntries: number,
    startingToken: string,
    view: (s: S) => T,
  ): Page<T> {
    let after = 0;
    if (startingToken !== "") {
      const match = new RegExp(`^${list}@([1-9][0-9]{0,8})$`).exec(startingToken);
      after = match ? Number(match[1]) : Number.NaN;
      if (Number.isNaN(after) || after > this.#position)
        throw Aborted("starting_token was not issued by this backend; start again with an empty token");
    }
    const rest = stored.filter((s) => s.position > after).sort((a, b) => a.position - b.position);
    const page = maxEntries > 0 ? rest.slice(0, maxEntries) : rest;
    const last = page.at(-1);
    return { items: page.map(view), nextToken: last && page.length < rest.length ? `${list}@${last.position}` : "" };
  }
}
