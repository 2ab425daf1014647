import { randomUUID } from "node:crypto";

/**
 * The few Kubernetes API objects the sidecars and the kubelet act on, with
 * the fields they read. Only what shapes the CSI calls is modelled.
 */

export type AccessModeName = "ReadWriteOnce" | "ReadOnlyMany" | "ReadWriteMany" | "ReadWriteOncePod";
export type VolumeMode = "Filesystem" | "Block";

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly uid: string;
}

export function meta(name: string, namespace = "default"): ObjectMeta {
  return { name, namespace, uid: randomUUID() };
}

export interface StorageClass {
  readonly name: string;
  readonly provisioner: string;
  readonly parameters: Readonly<Record<string, string>>;
  readonly mountOptions: readonly string[];
  readonly reclaimPolicy: "Delete" | "Retain";
  readonly allowVolumeExpansion: boolean;
}

export interface VolumeSnapshotClass {
  readonly name: string;
  readonly driver: string;
  readonly parameters: Readonly<Record<string, string>>;
}

export type DataSource =
  | { readonly kind: "VolumeSnapshot"; readonly snapshot: VolumeSnapshot }
  | { readonly kind: "PersistentVolumeClaim"; readonly claim: PersistentVolumeClaim };

export interface PersistentVolumeClaim {
  readonly metadata: ObjectMeta;
  readonly storageClass: StorageClass;
  readonly accessModes: readonly AccessModeName[];
  readonly volumeMode: VolumeMode;
  /** spec.resources.requests.storage, in bytes. */
  requestBytes: bigint;
  readonly dataSource?: DataSource;
  /**
   * The volume.kubernetes.io/selected-node annotation: the node the scheduler
   * chose for a WaitForFirstConsumer claim (removed again to reschedule).
   */
  selectedNode?: string;
  /** Set once bound. */
  volume?: PersistentVolume;
}

export interface PersistentVolume {
  /** pvc-<claim uid>, as the external-provisioner names volumes. */
  readonly name: string;
  capacityBytes: bigint;
  readonly accessModes: readonly AccessModeName[];
  readonly volumeMode: VolumeMode;
  readonly mountOptions: readonly string[];
  readonly csi: {
    readonly driver: string;
    readonly volumeHandle: string;
    readonly fsType: string;
    readonly readOnly: boolean;
    readonly volumeAttributes: Readonly<Record<string, string>>;
  };
  /** From the volume's accessible_topology. */
  readonly nodeAffinity: readonly Readonly<Record<string, string>>[];
  readonly claim: ObjectMeta;
  readonly reclaimPolicy: "Delete" | "Retain";
}

export interface VolumeAttachment {
  /** csi-<sha256(volumeHandle + driver + node)>, as the kubelet names them. */
  readonly name: string;
  readonly pvName: string;
  readonly nodeName: string;
  attached: boolean;
  attachmentMetadata: Record<string, string>;
}

export interface VolumeSnapshot {
  readonly metadata: ObjectMeta;
  readonly source: PersistentVolumeClaim;
  readonly snapshotClass: VolumeSnapshotClass;
  /** Set once the content is bound. */
  content?: VolumeSnapshotContent;
}

export interface VolumeSnapshotContent {
  /** snapcontent-<snapshot uid>. */
  readonly name: string;
  readonly snapshotHandle: string;
  readonly restoreSize: bigint;
  readyToUse: boolean;
}

export interface PodVolume {
  readonly claim: PersistentVolumeClaim;
  readonly readOnly: boolean;
}

export interface Pod {
  readonly metadata: ObjectMeta;
  readonly volumes: readonly PodVolume[];
}
