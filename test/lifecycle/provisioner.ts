import { Code, type Client } from "@connectrpc/connect";
import type { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { capabilityFor, type CapabilityInit } from "./capability.js";
import type { PersistentVolume, PersistentVolumeClaim, StorageClass } from "./objects.js";
import { DEFAULT_RETRY, withRetries, type RetryPolicy, type RetryStats } from "./retry.js";

/** The prefix of the StorageClass parameters meant for the sidecars, not the driver. */
export const SIDECAR_PREFIX = "csi.storage.k8s.io/";

/** The prefixed keys the external-provisioner understands (any other prefixed key is an error). */
const PROVISIONER_KEYS = new Set(
  [
    "fstype",
    ...["provisioner", "controller-publish", "node-stage", "node-publish", "controller-expand", "node-expand"].flatMap((op) => [
      `${op}-secret-name`,
      `${op}-secret-namespace`,
    ]),
  ].map((key) => SIDECAR_PREFIX + key),
);

/** Keys the provisioner adds with --extra-create-metadata. */
export const PVC_NAME_KEY = `${SIDECAR_PREFIX}pvc/name`;
export const PVC_NAMESPACE_KEY = `${SIDECAR_PREFIX}pvc/namespace`;
export const PV_NAME_KEY = `${SIDECAR_PREFIX}pv/name`;

export interface ProvisionerOptions {
  readonly driverName: string;
  /** --extra-create-metadata: add the PVC/PV names to the parameters. */
  readonly extraCreateMetadata: boolean;
  /** --default-fstype (the DigitalOcean manifests set ext4). */
  readonly defaultFsType: string;
  readonly singleNodeMultiWriter: boolean;
  /**
   * --node-deployment: the provisioner runs beside one node's instance and
   * provisions only the claims whose selected node is this one.
   */
  readonly nodeDeployment?: { readonly nodeName: string };
  /** Secrets the provisioner-secret-name parameter resolves to, by "namespace/name". */
  readonly secrets?: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly retry?: RetryPolicy;
  readonly stats?: RetryStats;
}

/**
 * What the external-provisioner sends the driver: the StorageClass parameters
 * without the `csi.storage.k8s.io/` keys (it strips them, and refuses unknown
 * ones), plus the PVC/PV names with --extra-create-metadata.
 */
export function driverParameters(
  sc: StorageClass,
  claim: PersistentVolumeClaim,
  pvName: string,
  extraCreateMetadata: boolean,
): Record<string, string> {
  const parameters: Record<string, string> = {};
  for (const [key, value] of Object.entries(sc.parameters)) {
    if (key.startsWith(SIDECAR_PREFIX)) {
      if (!PROVISIONER_KEYS.has(key))
        throw new Error(
          `StorageClass ${sc.name}: invalid parameter key ${JSON.stringify(key)} (the provisioner refuses unknown ${SIDECAR_PREFIX} keys)`,
        );
      continue;
    }
    parameters[key] = value;
  }
  if (extraCreateMetadata) {
    parameters[PVC_NAME_KEY] = claim.metadata.name;
    parameters[PVC_NAMESPACE_KEY] = claim.metadata.namespace;
    parameters[PV_NAME_KEY] = pvName;
  }
  return parameters;
}

export function fsTypeOf(sc: StorageClass, defaultFsType: string): string {
  return sc.parameters[`${SIDECAR_PREFIX}fstype`] ?? defaultFsType;
}

/** The external-provisioner: PVC -> CreateVolume -> PV, and DeleteVolume when a PV with reclaim policy Delete is released. */
export class ExternalProvisioner {
  constructor(
    private readonly controller: () => Client<typeof Controller>,
    private readonly options: ProvisionerOptions,
  ) {}

  secretsFor(sc: StorageClass): Record<string, string> {
    const name = sc.parameters[`${SIDECAR_PREFIX}provisioner-secret-name`];
    if (name === undefined) return {};
    const namespace = sc.parameters[`${SIDECAR_PREFIX}provisioner-secret-namespace`] ?? "default";
    const secret = this.options.secrets?.[`${namespace}/${name}`];
    if (secret === undefined) throw new Error(`secret ${namespace}/${name} not found`);
    return { ...secret };
  }

  capabilities(claim: PersistentVolumeClaim): CapabilityInit[] {
    const sc = claim.storageClass;
    return claim.accessModes.map((mode) =>
      capabilityFor(claim.volumeMode, mode, fsTypeOf(sc, this.options.defaultFsType), sc.mountOptions, this.options.singleNodeMultiWriter),
    );
  }

  /** The CreateVolumeRequest for a claim, as the provisioner builds it (and rebuilds it, identically, on every retry). */
  createVolumeRequest(claim: PersistentVolumeClaim, topology: Readonly<Record<string, string>> | undefined) {
    const pvName = `pvc-${claim.metadata.uid}`;
    const source = claim.dataSource;
    let volumeContentSource:
      | { type: { case: "snapshot"; value: { snapshotId: string } } | { case: "volume"; value: { volumeId: string } } }
      | undefined;
    if (source?.kind === "VolumeSnapshot") {
      const content = source.snapshot.content;
      if (content === undefined || !content.readyToUse) throw new Error(`VolumeSnapshot ${source.snapshot.metadata.name} is not ready`);
      if (claim.requestBytes < content.restoreSize)
        throw new Error(`requested ${claim.requestBytes} bytes is less than the snapshot's restore size ${content.restoreSize}`);
      volumeContentSource = { type: { case: "snapshot", value: { snapshotId: content.snapshotHandle } } };
    } else if (source?.kind === "PersistentVolumeClaim") {
      const volume = source.claim.volume;
      if (volume === undefined) throw new Error(`source PVC ${source.claim.metadata.name} is not bound`);
      volumeContentSource = { type: { case: "volume", value: { volumeId: volume.csi.volumeHandle } } };
    }
    return {
      name: pvName,
      capacityRange: { requiredBytes: claim.requestBytes },
      volumeCapabilities: this.capabilities(claim),
      parameters: driverParameters(claim.storageClass, claim, pvName, this.options.extraCreateMetadata),
      secrets: this.secretsFor(claim.storageClass),
      ...(volumeContentSource !== undefined ? { volumeContentSource } : {}),
      // With the Topology feature, the requisite and preferred topologies are the nodes' (here: the one node).
      ...(topology !== undefined && Object.keys(topology).length > 0
        ? { accessibilityRequirements: { requisite: [{ segments: { ...topology } }], preferred: [{ segments: { ...topology } }] } }
        : {}),
    };
  }

  async provision(claim: PersistentVolumeClaim, topology?: Readonly<Record<string, string>>): Promise<PersistentVolume> {
    const own = this.options.nodeDeployment?.nodeName;
    if (own !== undefined && claim.selectedNode !== own)
      throw new Error(`PVC ${claim.metadata.name} is for node ${claim.selectedNode ?? "(none selected)"}, not this provisioner's ${own}`);
    const request = this.createVolumeRequest(claim, topology);
    const retry = this.options.retry ?? DEFAULT_RETRY;
    // ResourceExhausted ("unable to provision in accessible_topology") is final for a claim with a
    // selected node: the provisioner removes the annotation and the scheduler picks a node again.
    const policy = claim.selectedNode !== undefined ? { ...retry, finalCodes: [Code.ResourceExhausted] } : retry;
    const response = await withRetries(
      `CreateVolume ${request.name}`,
      (o) => this.controller().createVolume(request, o),
      policy,
      this.options.stats,
    );
    const volume = response.volume;
    if (volume === undefined || volume.volumeId === "") throw new Error(`CreateVolume ${request.name} returned no volume`);
    const pv: PersistentVolume = {
      name: request.name,
      capacityBytes: volume.capacityBytes > 0n ? volume.capacityBytes : claim.requestBytes,
      accessModes: claim.accessModes,
      volumeMode: claim.volumeMode,
      mountOptions: claim.storageClass.mountOptions,
      csi: {
        driver: this.options.driverName,
        volumeHandle: volume.volumeId,
        fsType: claim.volumeMode === "Block" ? "" : fsTypeOf(claim.storageClass, this.options.defaultFsType),
        readOnly: false,
        volumeAttributes: { ...volume.volumeContext },
      },
      nodeAffinity: volume.accessibleTopology.map((t) => ({ ...t.segments })),
      claim: claim.metadata,
      reclaimPolicy: claim.storageClass.reclaimPolicy,
    };
    claim.volume = pv;
    return pv;
  }

  async delete(pv: PersistentVolume, sc: StorageClass): Promise<void> {
    await withRetries(
      `DeleteVolume ${pv.csi.volumeHandle}`,
      (o) => this.controller().deleteVolume({ volumeId: pv.csi.volumeHandle, secrets: this.secretsFor(sc) }, o),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
  }
}
