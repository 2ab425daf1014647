/**
 * The snapshot.storage.k8s.io/v1 API (external-snapshotter v8): TypeScript
 * types for the objects the manifests and examples create, and the
 * CustomResourceDefinitions, written from the API's documented fields. The
 * test suite validates every VolumeSnapshot* object against these CRD schemas.
 */
import type { IObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import { CustomResourceDefinition } from "kubernetes-models/apiextensions.k8s.io/v1";
import type { IJSONSchemaProps } from "kubernetes-models/apiextensions.k8s.io/v1/JSONSchemaProps";
import type { ICustomResourceColumnDefinition } from "kubernetes-models/apiextensions.k8s.io/v1/CustomResourceColumnDefinition";

export const SNAPSHOT_GROUP = "snapshot.storage.k8s.io";
/** The annotation the API server requires on CRDs of *.k8s.io groups, and the review of the external-snapshotter APIs. */
export const API_APPROVED = "api-approved.kubernetes.io";
export const SNAPSHOT_API_REVIEW = "https://github.com/kubernetes-csi/external-snapshotter/pull/419";
export const SNAPSHOT_API_VERSION = `${SNAPSHOT_GROUP}/v1`;

export type DeletionPolicy = "Delete" | "Retain";

export interface VolumeSnapshotClass {
  readonly apiVersion: typeof SNAPSHOT_API_VERSION;
  readonly kind: "VolumeSnapshotClass";
  readonly metadata: IObjectMeta;
  readonly driver: string;
  readonly deletionPolicy: DeletionPolicy;
  readonly parameters?: Readonly<Record<string, string>>;
}

export interface VolumeSnapshot {
  readonly apiVersion: typeof SNAPSHOT_API_VERSION;
  readonly kind: "VolumeSnapshot";
  readonly metadata: IObjectMeta;
  readonly spec: {
    readonly source: { readonly persistentVolumeClaimName: string } | { readonly volumeSnapshotContentName: string };
    readonly volumeSnapshotClassName?: string;
  };
}

export interface VolumeSnapshotContent {
  readonly apiVersion: typeof SNAPSHOT_API_VERSION;
  readonly kind: "VolumeSnapshotContent";
  readonly metadata: IObjectMeta;
  readonly spec: {
    readonly deletionPolicy: DeletionPolicy;
    readonly driver: string;
    readonly source: { readonly snapshotHandle: string } | { readonly volumeHandle: string };
    readonly sourceVolumeMode?: "Filesystem" | "Block";
    readonly volumeSnapshotClassName?: string;
    readonly volumeSnapshotRef: { readonly name: string; readonly namespace: string };
  };
}

export type SnapshotObject = VolumeSnapshotClass | VolumeSnapshot | VolumeSnapshotContent;

// --- schema helpers -------------------------------------------------------

export const str = (description: string, extra: Partial<IJSONSchemaProps> = {}): IJSONSchemaProps => ({
  type: "string",
  description,
  ...extra,
});
export const bool = (description: string): IJSONSchemaProps => ({ type: "boolean", description });
export const immutable = (field: string): IJSONSchemaProps["x-kubernetes-validations"] => [
  { rule: "self == oldSelf", message: `${field} is immutable` },
];
export const keptOnceSet = (field: string): { rule: string; message: string } => ({
  rule: `!has(oldSelf.${field}) || has(self.${field})`,
  message: `${field} is required once set`,
});

export function obj(
  description: string,
  properties: Record<string, IJSONSchemaProps>,
  required: string[] = [],
  extra: Partial<IJSONSchemaProps> = {},
): IJSONSchemaProps {
  return { type: "object", description, properties, ...(required.length > 0 ? { required } : {}), ...extra };
}

export function root(description: string, properties: Record<string, IJSONSchemaProps>, required: string[]): IJSONSchemaProps {
  return obj(
    description,
    {
      apiVersion: str("Versioned schema of this representation of an object."),
      kind: str("REST resource this object represents."),
      metadata: { type: "object" },
      ...properties,
    },
    required,
  );
}

export const DELETION_POLICY = str(
  'What happens to the snapshot on the storage system when its VolumeSnapshot (or, for a class, the snapshots it creates) is deleted: "Delete" removes it, "Retain" keeps it.',
  { enum: ["Delete", "Retain"] },
);

export const SNAPSHOT_ERROR = obj("Last error seen while creating the snapshot; cleared on success.", {
  message: str("What went wrong; never holds secrets."),
  time: str("When the error was seen.", { format: "date-time" }),
});

const QUANTITY_PATTERN =
  "^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$";

const volumeSnapshotClassSchema = root(
  "VolumeSnapshotClass: how a CSI driver takes the snapshots that name it. Cluster-scoped.",
  {
    driver: str("Name of the CSI driver that takes the snapshots."),
    deletionPolicy: DELETION_POLICY,
    parameters: {
      type: "object",
      description: "Driver-specific parameters, opaque to Kubernetes.",
      additionalProperties: { type: "string" },
    },
  },
  ["deletionPolicy", "driver"],
);

const volumeSnapshotSchema = root(
  "VolumeSnapshot: a request for a point-in-time snapshot of a PersistentVolumeClaim, or a binding to an existing snapshot.",
  {
    spec: obj(
      "What the snapshot is taken from, and with which class.",
      {
        source: obj(
          "Where the snapshot comes from: exactly one of a PVC to snapshot now or an existing VolumeSnapshotContent. Immutable.",
          {
            persistentVolumeClaimName: str("PVC in the VolumeSnapshot's namespace to take a snapshot of.", {
              "x-kubernetes-validations": immutable("persistentVolumeClaimName"),
            }),
            volumeSnapshotContentName: str("Existing VolumeSnapshotContent that represents the snapshot.", {
              "x-kubernetes-validations": immutable("volumeSnapshotContentName"),
            }),
          },
          [],
          {
            oneOf: [{ required: ["persistentVolumeClaimName"] }, { required: ["volumeSnapshotContentName"] }],
            "x-kubernetes-validations": [keptOnceSet("persistentVolumeClaimName"), keptOnceSet("volumeSnapshotContentName")],
          },
        ),
        volumeSnapshotClassName: str("VolumeSnapshotClass to use; unset means the default class of the source's driver.", { minLength: 1 }),
      },
      ["source"],
    ),
    status: obj("Observed state, written by the snapshot controller.", {
      boundVolumeSnapshotContentName: str("VolumeSnapshotContent this snapshot is bound to."),
      creationTime: str("When the storage system took the snapshot.", { format: "date-time" }),
      error: SNAPSHOT_ERROR,
      readyToUse: bool("Whether a volume can be restored from the snapshot."),
      restoreSize: {
        type: "string",
        description: "Minimum size of a volume restored from the snapshot.",
        pattern: QUANTITY_PATTERN,
        "x-kubernetes-int-or-string": true,
      },
      volumeGroupSnapshotName: str("Group snapshot this snapshot belongs to, if any."),
    }),
  },
  ["spec"],
);

const volumeSnapshotContentSchema = root(
  "VolumeSnapshotContent: a snapshot on the storage system, taken dynamically or pre-existing. Cluster-scoped.",
  {
    spec: obj(
      "The snapshot on the storage system and the VolumeSnapshot it is bound to.",
      {
        deletionPolicy: DELETION_POLICY,
        driver: str("Name of the CSI driver that owns the snapshot (its GetPluginInfo name)."),
        source: obj(
          "Exactly one of: the CSI snapshot id of an existing snapshot, or the CSI volume id to take a snapshot of. Immutable.",
          {
            snapshotHandle: str("CSI snapshot_id of an existing snapshot.", { "x-kubernetes-validations": immutable("snapshotHandle") }),
            volumeHandle: str("CSI volume_id of the volume to take a snapshot of.", {
              "x-kubernetes-validations": immutable("volumeHandle"),
            }),
          },
          [],
          {
            oneOf: [{ required: ["snapshotHandle"] }, { required: ["volumeHandle"] }],
            "x-kubernetes-validations": [keptOnceSet("volumeHandle"), keptOnceSet("snapshotHandle")],
          },
        ),
        sourceVolumeMode: str("Mode of the volume the snapshot was taken of: Filesystem or Block. Immutable.", {
          enum: ["Filesystem", "Block"],
          "x-kubernetes-validations": immutable("sourceVolumeMode"),
        }),
        volumeSnapshotClassName: str("VolumeSnapshotClass the snapshot was (or will be) taken with."),
        volumeSnapshotRef: obj(
          "The VolumeSnapshot this content is bound to; name and namespace are required. Immutable once bound.",
          {
            apiVersion: str("API version of the referent."),
            fieldPath: str("Field of the referent, if a part of it is meant."),
            kind: str("Kind of the referent."),
            name: str("Name of the referent."),
            namespace: str("Namespace of the referent."),
            resourceVersion: str("Resource version of the referent."),
            uid: str("UID of the referent."),
          },
          ["name", "namespace"],
          { "x-kubernetes-map-type": "atomic" },
        ),
      },
      ["deletionPolicy", "driver", "source", "volumeSnapshotRef"],
      { "x-kubernetes-validations": [keptOnceSet("sourceVolumeMode")] },
    ),
    status: obj("Observed state, written by the CSI snapshotter sidecar.", {
      creationTime: { type: "integer", format: "int64", description: "When the storage system took the snapshot, in Unix nanoseconds." },
      error: SNAPSHOT_ERROR,
      readyToUse: bool("Whether a volume can be restored from the snapshot."),
      restoreSize: {
        type: "integer",
        format: "int64",
        minimum: 0,
        description: "Size of the snapshot in bytes; a restored volume must be at least this big.",
      },
      snapshotHandle: str("CSI snapshot_id of the snapshot once it exists."),
      volumeGroupSnapshotHandle: str("CSI group_snapshot_id of the group snapshot it belongs to, if any."),
    }),
  },
  ["spec"],
);

export const age: ICustomResourceColumnDefinition = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" };

export interface CrdSpec {
  readonly kind: string;
  readonly plural: string;
  readonly singular: string;
  readonly shortNames: string[];
  readonly scope: "Namespaced" | "Cluster";
  readonly schema: IJSONSchemaProps;
  readonly columns: ICustomResourceColumnDefinition[];
  readonly status: boolean;
}

const CRDS: readonly CrdSpec[] = [
  {
    kind: "VolumeSnapshotClass",
    plural: "volumesnapshotclasses",
    singular: "volumesnapshotclass",
    shortNames: ["vsclass", "vsclasses"],
    scope: "Cluster",
    schema: volumeSnapshotClassSchema,
    columns: [
      { name: "Driver", type: "string", jsonPath: ".driver" },
      {
        name: "DeletionPolicy",
        type: "string",
        jsonPath: ".deletionPolicy",
        description: "Whether snapshots taken with this class are deleted with their VolumeSnapshot.",
      },
      age,
    ],
    status: false,
  },
  {
    kind: "VolumeSnapshot",
    plural: "volumesnapshots",
    singular: "volumesnapshot",
    shortNames: ["vs"],
    scope: "Namespaced",
    schema: volumeSnapshotSchema,
    columns: [
      { name: "ReadyToUse", type: "boolean", jsonPath: ".status.readyToUse" },
      { name: "SourcePVC", type: "string", jsonPath: ".spec.source.persistentVolumeClaimName" },
      { name: "SourceSnapshotContent", type: "string", jsonPath: ".spec.source.volumeSnapshotContentName" },
      { name: "RestoreSize", type: "string", jsonPath: ".status.restoreSize" },
      { name: "SnapshotClass", type: "string", jsonPath: ".spec.volumeSnapshotClassName" },
      { name: "SnapshotContent", type: "string", jsonPath: ".status.boundVolumeSnapshotContentName" },
      { name: "CreationTime", type: "date", jsonPath: ".status.creationTime" },
      age,
    ],
    status: true,
  },
  {
    kind: "VolumeSnapshotContent",
    plural: "volumesnapshotcontents",
    singular: "volumesnapshotcontent",
    shortNames: ["vsc", "vscs"],
    scope: "Cluster",
    schema: volumeSnapshotContentSchema,
    columns: [
      { name: "ReadyToUse", type: "boolean", jsonPath: ".status.readyToUse" },
      { name: "RestoreSize", type: "integer", jsonPath: ".status.restoreSize" },
      { name: "DeletionPolicy", type: "string", jsonPath: ".spec.deletionPolicy" },
      { name: "Driver", type: "string", jsonPath: ".spec.driver" },
      { name: "VolumeSnapshotClass", type: "string", jsonPath: ".spec.volumeSnapshotClassName" },
      { name: "VolumeSnapshot", type: "string", jsonPath: ".spec.volumeSnapshotRef.name" },
      { name: "VolumeSnapshotNamespace", type: "string", jsonPath: ".spec.volumeSnapshotRef.namespace" },
      age,
    ],
    status: true,
  },
];

/** A version of a CRD: its name, whether it is served and stored, and an optional deprecation. */
export interface CrdVersion {
  readonly name: string;
  readonly served: boolean;
  readonly storage: boolean;
  readonly deprecationWarning?: string;
}

/** The CustomResourceDefinition of one kind, every version with the same schema, columns and status subresource. */
export function customResourceDefinition(
  group: string,
  c: CrdSpec,
  versions: readonly CrdVersion[],
  conversionNone = false,
): CustomResourceDefinition {
  return new CustomResourceDefinition({
    metadata: { name: `${c.plural}.${group}`, annotations: { [API_APPROVED]: SNAPSHOT_API_REVIEW } },
    spec: {
      group,
      names: { kind: c.kind, listKind: `${c.kind}List`, plural: c.plural, singular: c.singular, shortNames: c.shortNames },
      scope: c.scope,
      ...(conversionNone ? { conversion: { strategy: "None" as const } } : {}),
      versions: versions.map((v) => ({
        name: v.name,
        served: v.served,
        storage: v.storage,
        ...(v.deprecationWarning !== undefined ? { deprecated: true, deprecationWarning: v.deprecationWarning } : {}),
        schema: { openAPIV3Schema: c.schema },
        additionalPrinterColumns: c.columns,
        ...(c.status ? { subresources: { status: {} } } : {}),
      })),
    },
  });
}

/**
 * The three snapshot CRDs. v1 is served and stored; v1beta1 stays listed, not
 * served, so that applying these over older CRDs whose stored versions still
 * include v1beta1 is accepted by the API server.
 */
export function snapshotCrds(): CustomResourceDefinition[] {
  return CRDS.map((c) =>
    customResourceDefinition(SNAPSHOT_GROUP, c, [
      { name: "v1", served: true, storage: true },
      {
        name: "v1beta1",
        served: false,
        storage: false,
        deprecationWarning: `${SNAPSHOT_GROUP}/v1beta1 ${c.kind} is deprecated; use ${SNAPSHOT_GROUP}/v1 ${c.kind}`,
      },
    ]),
  );
}
