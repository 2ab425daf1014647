import type { MessageInitShape } from "@bufbuild/protobuf";
import { ControllerServiceCapability_RPC_Type as Rpc, type ControllerServiceCapabilitySchema } from "../gen/csi/v1/csi_pb.js";
import type { ControllerFeatures } from "../backend/backend.js";
import type { Config } from "../config.js";
import { deploymentShape } from "./deployment.js";

export type ControllerCapabilityInit = MessageInitShape<typeof ControllerServiceCapabilitySchema>;

/**
 * What the Controller service offers for a backend and configuration: the
 * optional RPCs the backend can back, plus the alpha ones that are switched
 * on. Each handler checks the same switches, so a capability is listed if and
 * only if its RPC works.
 */
export interface ControllerOffer {
  /** PUBLISH_UNPUBLISH_VOLUME: ControllerPublishVolume and ControllerUnpublishVolume. */
  readonly publishUnpublish: boolean;
  readonly snapshots: boolean;
  readonly cloneVolume: boolean;
  readonly expandVolume: boolean;
  readonly getCapacity: boolean;
  readonly publishReadonly: boolean;
  readonly listPublishedNodes: boolean;
  /** MODIFY_VOLUME: ControllerModifyVolume, and mutable_parameters in CreateVolume. */
  readonly modifyVolume: boolean;
  /** VOLUME_CONDITION (alpha): volume_condition in ListVolumes and ControllerGetVolume. */
  readonly volumeCondition: boolean;
  /** GET_VOLUME (alpha): ControllerGetVolume. */
  readonly getVolume: boolean;
  /** GET_SNAPSHOT (alpha): GetSnapshot. */
  readonly getSnapshot: boolean;
  /** SINGLE_NODE_MULTI_WRITER (alpha): the SINGLE_NODE_{SINGLE,MULTI}_WRITER access modes. */
  readonly singleNodeMultiWriter: boolean;
  /** minimum_volume_size in GetCapacity, an alpha field: sent once any alpha feature is switched on. */
  readonly minimumVolumeSize: boolean;
}

export function controllerOffer(features: ControllerFeatures, config: Pick<Config, "alpha" | "nodeDeployment">): ControllerOffer {
  const { alpha } = config;
  const shape = deploymentShape(config);
  return {
    publishUnpublish: shape.controllerPublish,
    snapshots: features.snapshots,
    cloneVolume: features.cloneVolume,
    expandVolume: features.expandVolume && shape.controllerExpansion,
    getCapacity: features.getCapacity,
    publishReadonly: features.publishReadonly && shape.controllerPublish,
    listPublishedNodes: features.listPublishedNodes && shape.controllerPublish,
    modifyVolume: (features.modifyVolume ?? false) && shape.controllerModification,
    volumeCondition: features.volumeCondition && alpha.has("volume-condition"),
    getVolume: alpha.has("get-volume"),
    getSnapshot: features.snapshots && alpha.has("get-snapshot"),
    singleNodeMultiWriter: alpha.has("single-node-multi-writer"),
    minimumVolumeSize: alpha.size > 0,
  };
}

export function controllerCapabilities(offer: ControllerOffer): ControllerCapabilityInit[] {
  const types: Rpc[] = [Rpc.CREATE_DELETE_VOLUME];
  if (offer.publishUnpublish) types.push(Rpc.PUBLISH_UNPUBLISH_VOLUME);
  types.push(Rpc.LIST_VOLUMES);
  if (offer.listPublishedNodes) types.push(Rpc.LIST_VOLUMES_PUBLISHED_NODES);
  if (offer.getCapacity) types.push(Rpc.GET_CAPACITY);
  if (offer.snapshots) types.push(Rpc.CREATE_DELETE_SNAPSHOT, Rpc.LIST_SNAPSHOTS);
  if (offer.cloneVolume) types.push(Rpc.CLONE_VOLUME);
  if (offer.publishReadonly) types.push(Rpc.PUBLISH_READONLY);
  if (offer.expandVolume) types.push(Rpc.EXPAND_VOLUME);
  if (offer.modifyVolume) types.push(Rpc.MODIFY_VOLUME);
  if (offer.volumeCondition) types.push(Rpc.VOLUME_CONDITION);
  if (offer.getVolume) types.push(Rpc.GET_VOLUME);
  if (offer.singleNodeMultiWriter) types.push(Rpc.SINGLE_NODE_MULTI_WRITER);
  if (offer.getSnapshot) types.push(Rpc.GET_SNAPSHOT);
  return types.map((type) => ({ type: { case: "rpc", value: { type } } }));
}
