/**
 * The groupsnapshot.storage.k8s.io API (external-snapshotter v8.6: v1, with
 * v1beta2 kept as the stored version while clusters migrate): TypeScript types
 * for the VolumeGroupSnapshotClass the manifests ship and the three
 * CustomResourceDefinitions, written from the API's documented fields with the
 * schema helpers of snapshot-api.ts. The test suite validates every group
 * snapshot object against these schemas.
 */
import type { IObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import type { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import type { IJSONSchemaProps } from "kubernetes-models/apiextensions.k8s.io/v1/JSONSchemaProps";
import {
  type CrdSpec,
  customResourceDefinition,
  age,
  bool,
  DELETION_POLICY,
  type DeletionPolicy,
  immutable,
  keptOnceSet,
  obj,
  root,
  SNAPSHOT_ERROR,
  str,
} from "./snapshot-api.js";

export const GROUP_SNAPSHOT_GROUP = "groupsnapshot.storage.k8s.io";
export const GROUP_SNAPSHOT_API_VERSION = `${GROUP_SNAPSHOT_GROUP}/v1`;
/** The version stored while clusters migrate from the beta API (external-snapshotter v8.6). */
const STORED_VERSION = "v1beta2";

export interface VolumeGroupSnapshotClass {
  readonly apiVersion: typeof GROUP_SNAPSHOT_API_VERSION;
  readonly kind: "VolumeGroupSnapshotClass";
  readonly metadata: IObjectMeta;
  readonly driver: string;
  readonly deletionPolicy: DeletionPolicy;
  readonly parameters?: Record<string, string>;
}

const stringList = (description: string): IJSONSchemaProps => ({ type: "array", description, items: { type: "string" } });

const labelSelector = obj(
  "Label selector of the PersistentVolumeClaims (in the group snapshot's namespace) to snapshot together.",
  {
    matchExpressions: {
      type: "array",
      description: "Label selector requirements, ANDed.",
      items: obj(
        "A requirement: a key, an operator and values.",
        {
          key: str("The label key."),
          operator: str("In, NotIn, Exists or DoesNotExist."),
          values: stringList("Values for In and NotIn; empty for Exists and DoesNotExist."),
        },
        ["key", "operator"],
      ),
    },
    matchLabels: { type: "object", description: "Labels that must all match.", additionalProperties: { type: "string" } },
  },
  [],
  { "x-kubernetes-map-type": "atomic" },
);

const objectReference = (what: string): IJSONSchemaProps =>
  obj(
    what,
    {
      apiVersion: str("API version of the referent."),
      fieldPath: str("Field of the referent, if a part of it is meant."),
      kind: str("Kind of the referent."),
      name: str("Name of the referent."),
      namespace: str("Namespace of the referent."),
      resourceVersion: str("Resource version of the referent."),
      uid: str("UID of the referent."),
    },
    [],
    { "x-kubernetes-map-type": "atomic" },
  );

const volumeGroupSnapshotClassSchema = root(
  "VolumeGroupSnapshotClass: how a CSI driver takes the group snapshots that name it. Cluster-scoped.",
  {
    driver: str("Name of the CSI driver that takes the group snapshots."),
    deletionPolicy: DELETION_POLICY,
    parameters: {
      type: "object",
      description: "Driver-specific parameters, opaque to Kubernetes. Immutable.",
      additionalProperties: { type: "string" },
      "x-kubernetes-validations": immutable("parameters"),
    },
  },
  ["deletionPolicy", "driver"],
);

const volumeGroupSnapshotSchema = root(
  "VolumeGroupSnapshot: a request for a snapshot of several PersistentVolumeClaims at one moment, or a binding to an existing group snapshot.",
  {
    spec: obj(
      "What the group snapshot is taken of, and with which class.",
      {
        source: obj(
          "Exactly one of: a label selector of the claims to snapshot now, or an existing VolumeGroupSnapshotContent. Immutable.",
          {
            selector: { ...labelSelector, "x-kubernetes-validations": immutable("selector") },
            volumeGroupSnapshotContentName: str("Existing VolumeGroupSnapshotContent that represents the group snapshot.", {
              "x-kubernetes-validations": immutable("volumeGroupSnapshotContentName"),
            }),
          },
          [],
          {
            "x-kubernetes-validations": [
              {
                rule: "(has(self.selector) && !has(self.volumeGroupSnapshotContentName)) || (!has(self.selector) && has(self.volumeGroupSnapshotContentName))",
                message: "exactly one of selector and volumeGroupSnapshotContentName must be set",
              },
              keptOnceSet("selector"),
              keptOnceSet("volumeGroupSnapshotContentName"),
            ],
          },
        ),
        volumeGroupSnapshotClassName: str("VolumeGroupSnapshotClass to use; unset means the default class of the claims' driver.", {
          minLength: 1,
        }),
      },
      ["source"],
    ),
    status: obj("Observed state, written by the snapshot controller.", {
      boundVolumeGroupSnapshotContentName: str("VolumeGroupSnapshotContent this group snapshot is bound to."),
      creationTime: str("When the storage system took the group snapshot.", { format: "date-time" }),
      error: SNAPSHOT_ERROR,
      readyToUse: bool("Whether every member can be restored from."),
    }),
  },
  ["spec"],
);

const volumeGroupSnapshotContentSchema = root(
  "VolumeGroupSnapshotContent: a group snapshot on the storage system, taken dynamically or pre-existing. Cluster-scoped.",
  {
    spec: obj(
      "The group snapshot on the storage system and the VolumeGroupSnapshot it is bound to.",
      {
        deletionPolicy: DELETION_POLICY,
        driver: str("Name of the CSI driver that owns the group snapshot."),
        source: obj(
          "Exactly one of: the CSI volume ids to snapshot together, or the handles of an existing group snapshot. Immutable.",
          {
            volumeHandles: {
              ...stringList("CSI volume_ids of the volumes to snapshot together."),
              "x-kubernetes-validations": immutable("volumeHandles"),
            },
            groupSnapshotHandles: obj(
              "The CSI ids of an existing group snapshot and of its members.",
              {
                volumeGroupSnapshotHandle: str("CSI group_snapshot_id."),
                volumeSnapshotHandles: stringList("CSI snapshot_ids of the members."),
              },
              ["volumeGroupSnapshotHandle", "volumeSnapshotHandles"],
              { "x-kubernetes-validations": immutable("groupSnapshotHandles") },
            ),
          },
          [],
          {
            "x-kubernetes-validations": [
              {
                rule: "(has(self.volumeHandles) && !has(self.groupSnapshotHandles)) || (!has(self.volumeHandles) && has(self.groupSnapshotHandles))",
                message: "exactly one of volumeHandles and groupSnapshotHandles must be set",
              },
              keptOnceSet("volumeHandles"),
              keptOnceSet("groupSnapshotHandles"),
            ],
          },
        ),
        volumeGroupSnapshotClassName: str("VolumeGroupSnapshotClass the group snapshot was (or will be) taken with."),
        volumeGroupSnapshotRef: {
          ...objectReference("The VolumeGroupSnapshot this content is bound to. Immutable once bound."),
          required: ["name", "namespace"],
        },
      },
      ["deletionPolicy", "driver", "source", "volumeGroupSnapshotRef"],
    ),
    status: obj("Observed state, written by the CSI snapshotter sidecar.", {
      creationTime: str("When the storage system took the group snapshot.", { format: "date-time" }),
      error: SNAPSHOT_ERROR,
      readyToUse: bool("Whether every member can be restored from."),
      volumeGroupSnapshotHandle: str("CSI group_snapshot_id once it exists."),
      volumeSnapshotHandlePairList: {
        type: "array",
        description: "Each member: the CSI volume_id it was taken of and its CSI snapshot_id.",
        items: obj("A member of the group snapshot.", { snapshotHandle: str("CSI snapshot_id."), volumeHandle: str("CSI volume_id.") }, [
          "snapshotHandle",
          "volumeHandle",
        ]),
      },
    }),
  },
  ["spec"],
);

const CRDS: readonly CrdSpec[] = [
  {
    kind: "VolumeGroupSnapshotClass",
    plural: "volumegroupsnapshotclasses",
    singular: "volumegroupsnapshotclass",
    shortNames: ["vgsclass", "vgsclasses"],
    scope: "Cluster",
    schema: volumeGroupSnapshotClassSchema,
    columns: [
      { name: "Driver", type: "string", jsonPath: ".driver" },
      { name: "DeletionPolicy", type: "string", jsonPath: ".deletionPolicy" },
      age,
    ],
    status: false,
  },
  {
    kind: "VolumeGroupSnapshot",
    plural: "volumegroupsnapshots",
    singular: "volumegroupsnapshot",
    shortNames: ["vgs"],
    scope: "Namespaced",
    schema: volumeGroupSnapshotSchema,
    columns: [
      { name: "ReadyToUse", type: "boolean", jsonPath: ".status.readyToUse" },
      { name: "VolumeGroupSnapshotClass", type: "string", jsonPath: ".spec.volumeGroupSnapshotClassName" },
      { name: "VolumeGroupSnapshotContent", type: "string", jsonPath: ".status.boundVolumeGroupSnapshotContentName" },
      { name: "CreationTime", type: "date", jsonPath: ".status.creationTime" },
      age,
    ],
    status: true,
  },
  {
    kind: "VolumeGroupSnapshotContent",
    plural: "volumegroupsnapshotcontents",
    singular: "volumegroupsnapshotcontent",
    shortNames: ["vgsc", "vgscs"],
    scope: "Cluster",
    schema: volumeGroupSnapshotContentSchema,
    columns: [
      { name: "ReadyToUse", type: "boolean", jsonPath: ".status.readyToUse" },
      { name: "DeletionPolicy", type: "string", jsonPath: ".spec.deletionPolicy" },
      { name: "Driver", type: "string", jsonPath: ".spec.driver" },
      { name: "VolumeGroupSnapshotClass", type: "string", jsonPath: ".spec.volumeGroupSnapshotClassName" },
      { name: "VolumeGroupSnapshot", type: "string", jsonPath: ".spec.volumeGroupSnapshotRef.name" },
      { name: "VolumeGroupSnapshotNamespace", type: "string", jsonPath: ".spec.volumeGroupSnapshotRef.namespace" },
      age,
    ],
    status: true,
  },
];

/** The three group snapshot CRDs: v1 served, v1beta2 served and stored (the same schema, no conversion needed). */
export function groupSnapshotCrds(): CustomResourceDefinition[] {
  return CRDS.map((c) =>
    customResourceDefinition(
      GROUP_SNAPSHOT_GROUP,
      c,
      [
        { name: "v1", served: true, storage: false },
        { name: STORED_VERSION, served: true, storage: true },
      ],
      true,
    ),
  );
}
