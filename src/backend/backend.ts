/**
 * The narrow interface between the backend-agnostic CSI services (src/driver)
 * and a storage system. The services validate requests, check capabilities,
 * serialise operations per volume, compute sizes and map results to CSI
 * messages; a backend only stores, finds, attaches and describes volumes and
 * snapshots. Backends report failures as status errors from src/errors.ts
 * (NotFound, FailedPrecondition, ResourceExhausted, Aborted for a bad page
 * token, ...); anything else becomes INTERNAL.
 *
 * Sizes are bytes as JavaScript numbers (exact up to 8 PiB).
 */
import type { HealthCheck } from "./health-check.js";

export type Topology = Readonly<Record<string, string>>;
export type StringMap = Readonly<Record<string, string>>;

export type ContentSource = { readonly kind: "snapshot"; readonly id: string } | { readonly kind: "volume"; readonly id: string };

export interface VolumeCondition {
  readonly abnormal: boolean;
  readonly message: string;
}

export interface Volume {
  readonly id: string;
  readonly name: string;
  readonly capacityBytes: number;
  /** volume_context returned to the CO (and passed back on publish and stage). */
  readonly context: StringMap;
  /** What the volume was created from, when the backend knows it. */
  readonly source?: ContentSource;
  readonly accessibleTopology: readonly Topology[];
  /** Nodes the volume is attached (controller-published) to. */
  readonly publishedNodeIds: readonly string[];
  /** Creation parameters, when the backend keeps them (used to judge a repeated CreateVolume). */
  readonly parameters?: StringMap;
  readonly condition?: VolumeCondition;
}

export interface Snapshot {
  readonly id: string;
  readonly name: string;
  readonly sourceVolumeId: string;
  readonly sizeBytes: number;
  readonly createdAt: Date;
  readonly readyToUse: boolean;
  /** The volume group snapshot it was cut in, if any: it can then only be deleted with its group. */
  readonly groupSnapshotId?: string;
}

/** Snapshots of several volumes cut at one moment (the GroupController service). */
export interface GroupSnapshot {
  readonly id: string;
  readonly name: string;
  readonly sourceVolumeIds: readonly string[];
  readonly snapshots: readonly Snapshot[];
  readonly createdAt: Date;
  readonly readyToUse: boolean;
}

export interface NewGroupSnapshot {
  readonly name: string;
  /** Distinct, checked by the caller. */
  readonly sourceVolumeIds: readonly string[];
  readonly parameters: StringMap;
}

/** Volume group snapshots: present on a backend that can cut them write-order consistent. */
export interface GroupSnapshotBackend {
  findByName(name: string, signal: AbortSignal): Promise<GroupSnapshot | undefined>;
  get(groupSnapshotId: string, signal: AbortSignal): Promise<GroupSnapshot | undefined>;
  /**
   * Cut every member at one moment. NotFound for an unknown member, FailedPrecondition for members that
   * cannot be snapshotted together, ResourceExhausted when there is no room; nothing is left behind on failure.
   */
  create(spec: NewGroupSnapshot, signal: AbortSignal): Promise<GroupSnapshot>;
  /** The group and every member snapshot; an unknown id is success. */
  delete(groupSnapshotId: string, signal: AbortSignal): Promise<void>;
}

export interface Page<T> {
  readonly items: readonly T[];
  /** Empty when there is nothing more. */
  readonly nextToken: string;
}

/** How a backend sizes volumes. The services round requests up to `unitBytes`. */
export interface SizeRules {
  readonly minBytes: number;
  readonly maxBytes: number;
  /** Used when the request has no capacity_range. */
  readonly defaultBytes: number;
  readonly unitBytes: number;
}

/** Optional controller features; each one turns on the matching ControllerServiceCapability. */
export interface ControllerFeatures {
  readonly cloneVolume: boolean;
  readonly snapshots: boolean;
  readonly expandVolume: boolean;
  readonly getCapacity: boolean;
  readonly publishReadonly: boolean;
  readonly listPublishedNodes: boolean;
  readonly volumeCondition: boolean;
  /**
   * Volume.source is set for every volume created from a source, so a volume
   * without one was created empty, and a repeated CreateVolume naming a source
   * is refused (ALREADY_EXISTS). Absent or false: the backend may not know a
   * volume's source, and a repeated request is not judged by it.
   */
  readonly reportsContentSource?: boolean;
  /** ControllerModifyVolume changes the mutable parameters validateParameters accepts (MODIFY_VOLUME). */
  readonly modifyVolume?: boolean;
}

export type AccessType = "block" | "mount";

export interface NewVolume {
  readonly name: string;
  /** Final size: already defaulted, rounded up to the unit and checked against the range and the backend's limits. */
  readonly sizeBytes: number;
  /** Every way the CO may use the volume (from volume_capabilities). */
  readonly accessTypes: readonly AccessType[];
  /** Requested filesystem type of mount capabilities, "" if none was named. */
  readonly fsType: string;
  readonly parameters: StringMap;
  readonly mutableParameters: StringMap;
  readonly source?: ContentSource;
  readonly requisite: readonly Topology[];
  readonly preferred: readonly Topology[];
}

export interface PublishRequest {
  readonly volumeId: string;
  readonly nodeId: string;
  readonly readonly: boolean;
  readonly accessType: AccessType;
  /** True for the single-node access modes: the volume may be attached to one node at a time. */
  readonly singleNode: boolean;
  readonly volumeContext: StringMap;
}

export interface NewSnapshot {
  readonly name: string;
  readonly sourceVolumeId: string;
  readonly parameters: StringMap;
}

export interface SnapshotFilter {
  readonly snapshotId?: string;
  readonly sourceVolumeId?: string;
}

/** A byte range of a volume or snapshot. */
export interface BlockRange {
  readonly offset: number;
  readonly length: number;
}

/** Ranges of one snapshot (or between two), as the SnapshotMetadata service reports them. */
export interface SnapshotBlocks {
  /** Size of the volume the (target) snapshot was cut from. */
  readonly capacityBytes: number;
  /**
   * The ranges in ascending order, none overlapping and none ending at or
   * before `from`. Computed as they are pulled; stopping early releases
   * whatever they hold. NotFound when the snapshot went away meanwhile.
   */
  ranges(from: number, signal: AbortSignal): AsyncIterable<BlockRange>;
}

/** Changed-block metadata of snapshots (the SnapshotMetadata service). */
export interface SnapshotMetadataBackend {
  /** The ranges of a snapshot that hold data. NotFound for an unknown snapshot. */
  allocatedBlocks(snapshotId: string, signal: AbortSignal): Promise<SnapshotBlocks>;
  /**
   * The ranges whose contents differ between two snapshots of one volume, the
   * target cut after the base. NotFound for an unknown snapshot;
   * InvalidArgument when they are of different volumes or out of order.
   */
  changedBlocks(baseSnapshotId: string, targetSnapshotId: string, signal: AbortSignal): Promise<SnapshotBlocks>;
  /** What the service needs on the host (checked by Probe while it is served). */
  readonly health?: HealthCheck;
}

export interface ControllerBackend {
  readonly sizeRules: SizeRules;
  readonly features: ControllerFeatures;
  /** Throws InvalidArgument naming any parameter the backend does not understand or accept. */
  validateParameters(parameters: StringMap, mutableParameters: StringMap): void;

  findVolumeByName(name: string, signal: AbortSignal): Promise<Volume | undefined>;
  getVolume(volumeId: string, signal: AbortSignal): Promise<Volume | undefined>;
  /** Create a volume; the source, if any, exists (NotFound otherwise). */
  createVolume(spec: NewVolume, signal: AbortSignal): Promise<Volume>;
  /** Idempotent: an unknown id is success. FailedPrecondition while attached. */
  deleteVolume(volumeId: string, signal: AbortSignal): Promise<void>;
  /** Attach to a node; returns publish_context. NotFound for an unknown volume or node. */
  publishVolume(request: PublishRequest, signal: AbortSignal): Promise<StringMap>;
  /** Detach; an unknown volume, node or attachment is success. An empty nodeId detaches from every node. */
  unpublishVolume(volumeId: string, nodeId: string, signal: AbortSignal): Promise<void>;
  /** Pages in a stable order; Aborted for a token this backend did not issue or can no longer honour. */
  listVolumes(maxEntries: number, startingToken: string, signal: AbortSignal): Promise<Page<Volume>>;
  /** Grow to at least sizeBytes (already rounded); returns the new capacity. */
  expandVolume(volumeId: string, sizeBytes: number, signal: AbortSignal): Promise<number>;
  /**
   * Apply mutable parameters (already accepted by validateParameters) to an existing volume; idempotent.
   * NotFound for an unknown volume. Present when features.modifyVolume is.
   */
  modifyVolume?(volumeId: string, mutableParameters: StringMap, signal: AbortSignal): Promise<void>;
  /** Bytes that could still be provisioned for these parameters and this topology. */
  availableCapacity(parameters: StringMap, topology: Topology | undefined, signal: AbortSignal): Promise<number>;

  /** `sourceVolumeId` lets a backend narrow the search (snapshot names are unique per backend). */
  findSnapshotByName(name: string, sourceVolumeId: string, signal: AbortSignal): Promise<Snapshot | undefined>;
  getSnapshot(snapshotId: string, signal: AbortSignal): Promise<Snapshot | undefined>;
  createSnapshot(spec: NewSnapshot, signal: AbortSignal): Promise<Snapshot>;
  /** Idempotent: an unknown id is success. */
  deleteSnapshot(snapshotId: string, signal: AbortSignal): Promise<void>;
  listSnapshots(filter: SnapshotFilter, maxEntries: number, startingToken: string, signal: AbortSignal): Promise<Page<Snapshot>>;

  /** Present when the backend can cut volume group snapshots. */
  readonly groupSnapshots?: GroupSnapshotBackend;
  /** Present when the backend can serve changed-block metadata of its snapshots. */
  readonly snapshotMetadata?: SnapshotMetadataBackend;
  readonly health?: HealthCheck;
  close(): Promise<void>;
}

export interface NodeInfo {
  readonly nodeId: string;
  /** 0 means no limit. */
  readonly maxVolumesPerNode: number;
  readonly accessibleTopology: Topology;
}

/** What the node service needs from a backend: identity, and how to get a volume's block device on this node. */
export interface NodeBackend {
  nodeInfo(signal: AbortSignal): Promise<NodeInfo>;
  /**
   * The block device of a volume on this node, attaching it first if the
   * backend does that on the node (local: a loop device over the backing file).
   * Idempotent: a device already attached for the volume is reused.
   * NotFound when the device cannot be found.
   */
  attachDevice(volumeId: string, publishContext: StringMap, volumeContext: StringMap, signal: AbortSignal): Promise<string>;
  /** Undo attachDevice once the volume is unstaged; `devicePath` is what was staged, if known. Idempotent. */
  detachDevice(volumeId: string, devicePath: string | undefined, signal: AbortSignal): Promise<void>;
  /**
   * Optional: the block devices of a volume that are attached to this node now
   * (usually one; empty when none), found without attaching anything and
   * without the publish context. The node service uses it to answer NOT_FOUND
   * when a path given to NodeGetVolumeStats / NodeExpandVolume holds another
   * volume. A backend that cannot tell omits it; the node service then relies
   * on staging_target_path, or trusts the CO.
   */
  attachedDevices?(volumeId: string, signal: AbortSignal): Promise<readonly string[]>;
  /**
   * Optional: throw NotFound naming both nodes when the volume is not on this
   * node and its id places it on another. The node service calls it first in
   * every RPC that names a volume, so a misrouted call changes nothing.
   */
  requireOwnVolume?(volumeId: string, signal: AbortSignal): Promise<void>;
  /**
   * Optional: the condition of the volume's storage on this node (local: its
   * image file), for volume_condition; undefined when the backend cannot tell.
   */
  storageCondition?(volumeId: string, signal: AbortSignal): Promise<VolumeCondition | undefined>;
  readonly health?: HealthCheck;
  close(): Promise<void>;
}
