import type { CallContext } from "./call-context.js";
import type { ServiceHandlers } from "./service.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Controller, ListVolumesResponse_VolumeStatusSchema } from "../gen/csi/v1/csi_pb.js";
import type { ContentSource, ControllerBackend, Volume } from "../backend/backend.js";
import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";
import {
  AlreadyExists,
  FailedPrecondition,
  formatMessage,
  InvalidArgument,
  messagePart,
  NotFound,
  Unimplemented,
  type MessagePart,
} from "../errors.js";
import { InFlight, volumeKey } from "./inflight.js";
import { growVolumeStorage } from "./volume-growth.js";
import { formatBytes } from "../util/bytes.js";
import { parseCapacityRange, roundDown, sizeForExpansion, sizeForNewVolume, type RequestedRange } from "./capacity.js";
import { controllerCapabilities, controllerOffer } from "./controller-capabilities.js";
import { conditionMessage, snapshotMessage, volumeMessage } from "./controller-messages.js";
import {
  checkMap,
  checkMaxEntries,
  checkStringSize,
  contentSourceOf,
  MAX_NODE_ID_BYTES,
  requireName,
  requireString,
  sameMap,
  topologyConstraintsOf,
  topologyCovers,
  type TopologyConstraints,
} from "./controller-validation.js";
import { checkCapability, requireCapabilities, requireCapability, type CapabilityPolicy } from "./volume-capability.js";

export interface ControllerServiceOptions {
  readonly config: Config;
  readonly backend: ControllerBackend;
  readonly log: Logger;
  /** Operations in progress; shared with the node's storage growth with --node-deployment (plugin.ts). */
  readonly inflight?: InFlight;
}

const VOLUME_ID_HINT = "give the volume_id that CreateVolume returned";
const SNAPSHOT_ID_HINT = "give the snapshot_id that CreateSnapshot returned";
const NO_CONTROLLER_PUBLISH =
  "ControllerPublishVolume and ControllerUnpublishVolume are not offered with --node-deployment: a local volume is used on its own node without attaching (NodeStageVolume needs no publish_context)";

// In-flight keys: one operation at a time per volume, per snapshot and per CO-chosen name.
const volumeNameKey = (name: string) => `volume-name:${name}`;
const snapshotKey = (id: string) => `snapshot:${id}`;
const snapshotNameKey = (name: string) => `snapshot-name:${name}`;
const sourceKey = (source: ContentSource) => (source.kind === "snapshot" ? snapshotKey(source.id) : volumeKey(source.id));

function describeSource(source: ContentSource | undefined): MessagePart {
  return source === undefined ? messagePart("no content source") : messagePart("%s %s", source.kind, source.id);
}

interface CreateWish {
  readonly range: RequestedRange | undefined;
  readonly parameters: Record<string, string>;
  readonly source: ContentSource | undefined;
  readonly topology: TopologyConstraints;
  readonly reportsContentSource: boolean;
}

/** Why an existing volume of the same name does not satisfy a repeated CreateVolume, or undefined when it does. */
function incompatibility(existing: Volume, wish: CreateWish): MessagePart | undefined {
  const { range } = wish;
  if (range && existing.capacityBytes < range.requiredBytes) {
    return messagePart(
      "it is %s, less than capacity_range.required_bytes %s",
      formatBytes(existing.capacityBytes),
      formatBytes(range.requiredBytes),
    );
  }
  if (range && range.limitBytes > 0 && existing.capacityBytes > range.limitBytes) {
    return messagePart(
      "it is %s, more than capacity_range.limit_bytes %s",
      formatBytes(existing.capacityBytes),
      formatBytes(range.limitBytes),
    );
  }
  if (existing.parameters !== undefined && !sameMap(existing.parameters, wish.parameters)) {
    return messagePart("it was created with different parameters");
  }
  // A backend that may not know a volume's source cannot be held to it.
  const sourceKnown = existing.source !== undefined || wish.reportsContentSource;
  if (sourceKnown && (wish.source?.kind !== existing.source?.kind || wish.source?.id !== existing.source?.id)) {
    return messagePart(
      "it was created from %s, and this request asks for %s",
      describeSource(existing.source),
      describeSource(wish.source),
    );
  }
  const { requisite } = wish.topology;
  if (requisite.length > 0 && existing.accessibleTopology.length > 0) {
    const reachable = existing.accessibleTopology.some((own) => requisite.some((wanted) => topologyCovers(wanted, own)));
    if (!reachable) return messagePart("it is not accessible from any of the requisite topologies");
  }
  return undefined;
}

type VolumeStatusInit = MessageInitShape<typeof ListVolumesResponse_VolumeStatusSchema>;

/**
 * The CSI Controller service over a backend. It validates requests, checks
 * capabilities, serialises operations per volume, snapshot and name, computes
 * sizes, enforces idempotency by name and maps results to CSI messages; the
 * backend only stores, finds and attaches.
 */
export function controllerService(options: ControllerServiceOptions): ServiceHandlers<typeof Controller> {
  const { config, backend } = options;
  const offer = controllerOffer(backend.features, config);
  const capabilities = controllerCapabilities(offer);
  const policy: CapabilityPolicy = { singleNodeMultiWriter: offer.singleNodeMultiWriter };
  const rules = backend.sizeRules;
  const reportsContentSource = backend.features.reportsContentSource === true;
  const inflight = options.inflight ?? new InFlight();

  function volumeStatus(volume: Volume): VolumeStatusInit | undefined {
    if (!offer.listPublishedNodes && !offer.volumeCondition) return undefined;
    return {
      publishedNodeIds: offer.listPublishedNodes ? [...volume.publishedNodeIds] : [],
      volumeCondition: offer.volumeCondition ? conditionMessage(volume) : undefined,
    };
  }

  async function requireVolume(volumeId: string, ctx: CallContext): Promise<Volume> {
    const volume = await backend.getVolume(volumeId, ctx.signal);
    if (!volume) throw NotFound("volume %s does not exist", volumeId);
    return volume;
  }

  async function sourceSize(source: ContentSource, ctx: CallContext): Promise<number> {
    if (source.kind === "snapshot") {
      const snapshot = await backend.getSnapshot(source.id, ctx.signal);
      if (!snapshot) throw NotFound("source snapshot %s does not exist", source.id);
      if (!snapshot.readyToUse) throw FailedPrecondition("source snapshot %s is not ready to use yet; retry once it is", source.id);
      return snapshot.sizeBytes;
    }
    const volume = await backend.getVolume(source.id, ctx.signal);
    if (!volume) throw NotFound("source volume %s does not exist", source.id);
    return volume.capacityBytes;
  }

  const service: Required<ServiceHandlers<typeof Controller>> = {
    controllerGetCapabilities() {
      return { capabilities };
    },

    async createVolume(req, ctx) {
      const name = requireName(req.name, "name");
      const { accessTypes, fsType } = requireCapabilities(req.volumeCapabilities, policy, "volume_capabilities");
      const parameters = { ...checkMap(req.parameters, "parameters") };
      checkMap(req.secrets, "secrets");
      checkMap(req.mutableParameters, "mutable_parameters");
      if (Object.keys(req.mutableParameters).length > 0) {
        throw InvalidArgument(
          "mutable_parameters are not supported: this driver cannot modify volumes (it has no MODIFY_VOLUME capability)",
        );
      }
      const range = parseCapacityRange(req.capacityRange);
      const source = contentSourceOf(req.volumeContentSource);
      if (source?.kind === "snapshot" && !offer.snapshots) {
        throw InvalidArgument("volume_content_source: this backend cannot create volumes from snapshots");
      }
      if (source?.kind === "volume" && !offer.cloneVolume) {
        throw InvalidArgument("volume_content_source: this backend cannot clone volumes");
      }
      const topology = topologyConstraintsOf(req.accessibilityRequirements);
      backend.validateParameters(parameters, {});
      // A range no volume can satisfy fails here, before any lookup (a source only raises the lower bound).
      sizeForNewVolume(range, rules);

      const keys = [volumeNameKey(name), ...(source ? [sourceKey(source)] : [])];
      return inflight.run(keys, "CreateVolume", async () => {
        const existing = await backend.findVolumeByName(name, ctx.signal);
        if (existing) {
          const conflict = incompatibility(existing, { range, parameters, source, topology, reportsContentSource });
          if (conflict !== undefined) throw AlreadyExists("a volume named %s already exists (%s) but %s", name, existing.id, conflict);
          ctx.log.debug({ volumeId: existing.id }, "volume already exists: returning it");
          return { volume: volumeMessage(existing) };
        }
        const sizeBytes = sizeForNewVolume(range, rules, source ? await sourceSize(source, ctx) : undefined);
        const volume = await backend.createVolume(
          {
            name,
            sizeBytes,
            accessTypes,
            fsType,
            parameters,
            mutableParameters: {},
            source,
            requisite: topology.requisite,
            preferred: topology.preferred,
          },
          ctx.signal,
        );
        return { volume: volumeMessage(volume) };
      });
    },

    async deleteVolume(req, ctx) {
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      checkMap(req.secrets, "secrets");
      await inflight.run([volumeKey(volumeId)], "DeleteVolume", () => backend.deleteVolume(volumeId, ctx.signal));
      return {};
    },

    async controllerPublishVolume(req, ctx) {
      if (!offer.publishUnpublish) throw Unimplemented(NO_CONTROLLER_PUBLISH);
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      const nodeId = requireString(req.nodeId, "node_id", "give the node_id that NodeGetInfo reported", MAX_NODE_ID_BYTES);
      const capability = requireCapability(req.volumeCapability, policy, "volume_capability");
      checkMap(req.secrets, "secrets");
      const volumeContext = checkMap(req.volumeContext, "volume_context");
      if (req.readonly && !offer.publishReadonly) {
        throw InvalidArgument("readonly is not supported by this backend (no PUBLISH_READONLY capability): set it to false");
      }
      return inflight.run([volumeKey(volumeId)], "ControllerPublishVolume", async () => {
        const publishContext = await backend.publishVolume(
          // Every access mode this service accepts is a single-node one.
          { volumeId, nodeId, readonly: req.readonly, accessType: capability.accessType, singleNode: true, volumeContext },
          ctx.signal,
        );
        return { publishContext: { ...publishContext } };
      });
    },

    async controllerUnpublishVolume(req, ctx) {
      if (!offer.publishUnpublish) throw Unimplemented(NO_CONTROLLER_PUBLISH);
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      checkStringSize(req.nodeId, "node_id", MAX_NODE_ID_BYTES);
      checkMap(req.secrets, "secrets");
      await inflight.run([volumeKey(volumeId)], "ControllerUnpublishVolume", () =>
        backend.unpublishVolume(volumeId, req.nodeId, ctx.signal),
      );
      return {};
    },

    async validateVolumeCapabilities(req, ctx) {
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      if (req.volumeCapabilities.length === 0) {
        throw InvalidArgument("volume_capabilities is required: give at least one capability to check");
      }
      const checks = req.volumeCapabilities.map((c, i) => checkCapability(c, policy, `volume_capabilities[${i}]`));
      for (const check of checks) if (!check.ok && check.malformed) throw InvalidArgument("%s", check.reason);
      checkMap(req.volumeContext, "volume_context");
      checkMap(req.parameters, "parameters");
      checkMap(req.mutableParameters, "mutable_parameters");
      checkMap(req.secrets, "secrets");

      const volume = await requireVolume(volumeId, ctx);
      const unsupported = checks.flatMap((c) => (c.ok ? [] : [c.reason]));
      if (unsupported.length > 0) return { message: unsupported.join("; ") };
      // The context this driver gave the volume must not be contradicted; other keys
      // (a provisioner's identity, an older driver's keys on pre-existing PVs) are not ours to judge.
      const contradicted = Object.entries(volume.context).filter(
        ([key, value]) => key in req.volumeContext && req.volumeContext[key] !== value,
      );
      if (contradicted.length > 0) {
        return {
          message: formatMessage(
            "volume_context contradicts the volume's own context for %q",
            contradicted.map(([k]) => k),
          ),
        };
      }
      if (Object.keys(req.mutableParameters).length > 0) {
        return { message: "mutable_parameters are not supported: this driver cannot modify volumes" };
      }
      if (Object.keys(req.parameters).length > 0) {
        try {
          backend.validateParameters(req.parameters, {});
        } catch (err) {
          return { message: err instanceof Error ? err.message : String(err) };
        }
        if (volume.parameters !== undefined && !sameMap(volume.parameters, req.parameters)) {
          return { message: "parameters differ from the parameters the volume was created with" };
        }
      }
      return {
        confirmed: {
          volumeContext: { ...req.volumeContext },
          volumeCapabilities: req.volumeCapabilities,
          parameters: { ...req.parameters },
          mutableParameters: {},
        },
      };
    },

    async listVolumes(req, ctx) {
      const maxEntries = checkMaxEntries(req.maxEntries);
      const startingToken = checkStringSize(req.startingToken, "starting_token");
      const page = await backend.listVolumes(maxEntries, startingToken, ctx.signal);
      return {
        entries: page.items.map((volume) => ({ volume: volumeMessage(volume), status: volumeStatus(volume) })),
        nextToken: page.nextToken,
      };
    },

    async controllerGetVolume(req, ctx) {
      if (!offer.getVolume) throw Unimplemented("ControllerGetVolume is an alpha RPC; enable it with --alpha-features=get-volume");
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      const volume = await requireVolume(volumeId, ctx);
      return {
        volume: volumeMessage(volume),
        status: {
          publishedNodeIds: offer.listPublishedNodes ? [...volume.publishedNodeIds] : [],
          volumeCondition: offer.volumeCondition ? conditionMessage(volume) : undefined,
        },
      };
    },

    async controllerModifyVolume(req, ctx) {
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      checkMap(req.secrets, "secrets");
      checkMap(req.mutableParameters, "mutable_parameters");
      const keys = Object.keys(req.mutableParameters);
      if (keys.length === 0) throw InvalidArgument("mutable_parameters is required: name the parameters to change");
      return inflight.run([volumeKey(volumeId)], "ControllerModifyVolume", async () => {
        await requireVolume(volumeId, ctx);
        // The backend may explain what is wrong with a key more precisely; either way nothing is modified.
        backend.validateParameters({}, req.mutableParameters);
        throw InvalidArgument(
          "unsupported mutable parameters %q: this driver cannot modify volumes (it has no MODIFY_VOLUME capability); nothing was changed",
          keys,
        );
      });
    },

    async getCapacity(req, ctx) {
      if (!offer.getCapacity) throw Unimplemented("GetCapacity is not supported by this backend");
      const checks = req.volumeCapabilities.map((c, i) => checkCapability(c, policy, `volume_capabilities[${i}]`));
      for (const check of checks) if (!check.ok && check.malformed) throw InvalidArgument("%s", check.reason);
      const parameters = checkMap(req.parameters, "parameters");
      const topology = req.accessibleTopology ? checkMap(req.accessibleTopology.segments, "accessible_topology.segments") : undefined;
      backend.validateParameters(parameters, {});
      // Volumes with a capability this driver cannot offer cannot be provisioned at all.
      const available = checks.every((c) => c.ok) ? Math.max(0, await backend.availableCapacity(parameters, topology, ctx.signal)) : 0;
      const largest = Math.min(rules.maxBytes, roundDown(available, rules.unitBytes));
      return {
        availableCapacity: BigInt(available),
        maximumVolumeSize: BigInt(largest >= rules.minBytes ? largest : 0),
        minimumVolumeSize: offer.minimumVolumeSize ? BigInt(rules.minBytes) : undefined,
      };
    },

    async createSnapshot(req, ctx) {
      if (!offer.snapshots) throw Unimplemented("snapshots are not supported by this backend");
      const sourceVolumeId = requireString(req.sourceVolumeId, "source_volume_id", "give the id of the volume to snapshot");
      const name = requireName(req.name, "name");
      const parameters = checkMap(req.parameters, "parameters");
      checkMap(req.secrets, "secrets");
      return inflight.run([snapshotNameKey(name), volumeKey(sourceVolumeId)], "CreateSnapshot", async () => {
        const existing = await backend.findSnapshotByName(name, sourceVolumeId, ctx.signal);
        if (existing) {
          if (existing.sourceVolumeId !== sourceVolumeId) {
            throw AlreadyExists(
              "a snapshot named %s already exists (%s) of volume %s, not of volume %s",
              name,
              existing.id,
              existing.sourceVolumeId,
              sourceVolumeId,
            );
          }
          return { snapshot: snapshotMessage(existing) };
        }
        await requireVolume(sourceVolumeId, ctx);
        const snapshot = await backend.createSnapshot({ name, sourceVolumeId, parameters }, ctx.signal);
        return { snapshot: snapshotMessage(snapshot) };
      });
    },

    async deleteSnapshot(req, ctx) {
      if (!offer.snapshots) throw Unimplemented("snapshots are not supported by this backend");
      const snapshotId = requireString(req.snapshotId, "snapshot_id", SNAPSHOT_ID_HINT);
      checkMap(req.secrets, "secrets");
      await inflight.run([snapshotKey(snapshotId)], "DeleteSnapshot", () => backend.deleteSnapshot(snapshotId, ctx.signal));
      return {};
    },

    async listSnapshots(req, ctx) {
      if (!offer.snapshots) throw Unimplemented("snapshots are not supported by this backend");
      const maxEntries = checkMaxEntries(req.maxEntries);
      const startingToken = checkStringSize(req.startingToken, "starting_token");
      checkStringSize(req.snapshotId, "snapshot_id");
      checkStringSize(req.sourceVolumeId, "source_volume_id");
      checkMap(req.secrets, "secrets");
      const filter = {
        ...(req.snapshotId !== "" ? { snapshotId: req.snapshotId } : {}),
        ...(req.sourceVolumeId !== "" ? { sourceVolumeId: req.sourceVolumeId } : {}),
      };
      const page = await backend.listSnapshots(filter, maxEntries, startingToken, ctx.signal);
      return { entries: page.items.map((s) => ({ snapshot: snapshotMessage(s) })), nextToken: page.nextToken };
    },

    async getSnapshot(req, ctx) {
      if (!offer.getSnapshot) throw Unimplemented("GetSnapshot is an alpha RPC; enable it with --alpha-features=get-snapshot");
      const snapshotId = requireString(req.snapshotId, "snapshot_id", SNAPSHOT_ID_HINT);
      checkMap(req.secrets, "secrets");
      const snapshot = await backend.getSnapshot(snapshotId, ctx.signal);
      if (!snapshot) throw NotFound("snapshot %s does not exist", snapshotId);
      return { snapshot: snapshotMessage(snapshot) };
    },

    async controllerExpandVolume(req, ctx) {
      if (!offer.expandVolume) {
        throw Unimplemented(
          config.nodeDeployment
            ? "ControllerExpandVolume is not offered with --node-deployment: volumes are expanded on their node (NodeExpandVolume)"
            : "volume expansion is not supported by this backend",
        );
      }
      const volumeId = requireString(req.volumeId, "volume_id", VOLUME_ID_HINT);
      const range = parseCapacityRange(req.capacityRange);
      const capability = req.volumeCapability ? requireCapability(req.volumeCapability, policy, "volume_capability") : undefined;
      checkMap(req.secrets, "secrets");
      // Checks that do not depend on the volume (missing range, above the maximum) come before the lookup.
      sizeForExpansion(range, rules, 0);
      return inflight.run([volumeKey(volumeId)], "ControllerExpandVolume", async () => {
        const capacityBytes = await growVolumeStorage(backend, volumeId, range, ctx.signal);
        // A filesystem must be grown by the node; a raw block volume is usable at its new size at once.
        return { capacityBytes: BigInt(capacityBytes), nodeExpansionRequired: capability?.accessType !== "block" };
      });
    },
  };
  return service;
}
