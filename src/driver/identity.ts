import type { ServiceHandlers } from "./service.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  type Identity,
  PluginCapability_Service_Type,
  PluginCapability_VolumeExpansion_Type,
  type PluginCapabilitySchema,
} from "../gen/csi/v1/csi_pb.js";
import type { Readiness } from "./readiness.js";

export type PluginCapabilityInit = MessageInitShape<typeof PluginCapabilitySchema>;

export interface PluginFeatures {
  /** This process serves the Controller service. */
  readonly controllerService: boolean;
  /** Volumes are reachable from only part of the cluster (a region, a node). */
  readonly accessibilityConstraints: boolean;
  readonly onlineExpansion: boolean;
  readonly snapshotMetadataService: boolean;
  /** The GroupController service (volume group snapshots). */
  readonly groupControllerService: boolean;
}

export function pluginCapabilities(features: PluginFeatures): PluginCapabilityInit[] {
  const caps: PluginCapabilityInit[] = [];
  const service = (type: PluginCapability_Service_Type): PluginCapabilityInit => ({ type: { case: "service", value: { type } } });
  if (features.controllerService) caps.push(service(PluginCapability_Service_Type.CONTROLLER_SERVICE));
  if (features.accessibilityConstraints) caps.push(service(PluginCapability_Service_Type.VOLUME_ACCESSIBILITY_CONSTRAINTS));
  if (features.groupControllerService) caps.push(service(PluginCapability_Service_Type.GROUP_CONTROLLER_SERVICE));
  if (features.snapshotMetadataService) caps.push(service(PluginCapability_Service_Type.SNAPSHOT_METADATA_SERVICE));
  if (features.onlineExpansion) {
    caps.push({ type: { case: "volumeExpansion", value: { type: PluginCapability_VolumeExpansion_Type.ONLINE } } });
  }
  return caps;
}

export interface IdentityOptions {
  readonly name: string;
  readonly version: string;
  readonly features: PluginFeatures;
  readonly readiness: Readiness;
}

const PROBE_READY = { ready: true } as const;

export function identityService(options: IdentityOptions): ServiceHandlers<typeof Identity> {
  const capabilities = pluginCapabilities(options.features);
  return {
    getPluginInfo: () => ({ name: options.name, vendorVersion: options.version }),
    getPluginCapabilities: () => ({ capabilities }),
    // Liveness: whether this process works (its own checks), never whether a remote API answers.
    // Answered at once while the last pass is fresh (kubelet probes every few seconds).
    probe: (_req, ctx) =>
      options.readiness.recentlyPassed ? PROBE_READY : options.readiness.ready(ctx.signal).then((ready) => ({ ready })),
  };
}
