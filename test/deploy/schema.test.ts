import { beforeAll, describe, expect, it } from "vitest";
import { isObject, loadManifests, loadYaml, ManifestValidator, type Json, type JsonObject, type LoadedDoc } from "./manifests.js";

const MANIFEST_DIRS = ["deploy/kubernetes", "examples/kubernetes"];

let docs: LoadedDoc[];
let validator: ManifestValidator;

beforeAll(async () => {
  docs = await loadManifests(...MANIFEST_DIRS);
  const crds = (await loadYaml("deploy/kubernetes/digitalocean/crds.yaml")).map((d) => d.object);
  validator = new ManifestValidator(crds);
});

describe("every manifest and example is valid against the Kubernetes schemas", () => {
  it("finds the manifests (so the checks below check something)", () => {
    const files = new Set(docs.map((d) => d.file));
    expect(files.size).toBeGreaterThanOrEqual(15);
    const kinds = new Set(docs.map((d) => d.object.kind));
    for (const kind of [
      "CSIDriver",
      "StorageClass",
      "StatefulSet",
      "DaemonSet",
      "ClusterRole",
      "CustomResourceDefinition",
      "VolumeSnapshotClass",
      "VolumeSnapshot",
      "VolumeSnapshotContent",
      "PersistentVolume",
      "Pod",
      "Deployment",
      "VolumeAttributesClass",
      "VolumeGroupSnapshotClass",
    ]) {
      expect(kinds, kind).toContain(kind);
    }
  });

  it("validates each object against kubernetes-models' schemas or the shipped snapshot CRDs", () => {
    const failures: string[] = [];
    for (const doc of docs) {
      const errors = validator.errors(doc.object);
      if (errors.length > 0) failures.push(`${doc.file}#${doc.index} ${String(doc.object.kind)}: ${errors.join("; ")}`);
    }
    expect(failures).toEqual([]);
  });

  it("uses only API versions a validator knows", () => {
    const unknown = docs
      .filter((d) => !validator.knows(String(d.object.apiVersion), String(d.object.kind)))
      .map((d) => `${d.file}: ${String(d.object.apiVersion)} ${String(d.object.kind)}`);
    expect(unknown).toEqual([]);
  });
});

describe("the validators reject broken objects", () => {
  it("built-in kinds: a missing required field and a bad enum value", () => {
    expect(validator.errors({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "x" } }).join()).toMatch(
      /provisioner/,
    );
    expect(
      validator
        .errors({
          apiVersion: "storage.k8s.io/v1",
          kind: "StorageClass",
          metadata: { name: "x" },
          provisioner: "p",
          volumeBindingMode: "Later",
        })
        .join(),
    ).toMatch(/allowed values/);
    expect(validator.errors({ apiVersion: "apps/v1", kind: "DaemonSet", metadata: { name: "x" }, spec: { template: {} } }).join()).toMatch(
      /selector/,
    );
  });

  it("snapshot kinds: both sources, an unknown field, a missing driver, a bad deletion policy", () => {
    const snapshot: JsonObject = {
      apiVersion: "snapshot.storage.k8s.io/v1",
      kind: "VolumeSnapshot",
      metadata: { name: "s" },
      spec: { source: { persistentVolumeClaimName: "a" } },
    };
    expect(validator.errors(snapshot)).toEqual([]);
    expect(
      validator.errors({ ...snapshot, spec: { source: { persistentVolumeClaimName: "a", volumeSnapshotContentName: "b" } } }).length,
    ).toBeGreaterThan(0);
    expect(validator.errors({ ...snapshot, spec: { source: { persistentVolumeClaimName: "a" }, snapshotClass: "typo" } }).join()).toMatch(
      /snapshotClass/,
    );
    expect(
      validator
        .errors({
          apiVersion: "snapshot.storage.k8s.io/v1",
          kind: "VolumeSnapshotClass",
          metadata: { name: "c" },
          deletionPolicy: "Delete",
        })
        .join(),
    ).toMatch(/driver/);
    expect(
      validator
        .errors({
          apiVersion: "snapshot.storage.k8s.io/v1",
          kind: "VolumeSnapshotClass",
          metadata: { name: "c" },
          driver: "d",
          deletionPolicy: "Keep",
        })
        .join(),
    ).toMatch(/allowed values/);
    expect(
      validator
        .errors({
          apiVersion: "snapshot.storage.k8s.io/v1",
          kind: "VolumeSnapshotClass",
          metadata: {},
          driver: "d",
          deletionPolicy: "Delete",
        })
        .join(),
    ).toMatch(/name/);
  });
});

describe("the snapshot CRDs", () => {
  /** Kubernetes requires structural schemas: every node states its type (or is int-or-string / preserves unknown fields). */
  function untyped(schema: Json, path: string): string[] {
    if (!isObject(schema)) return [];
    const out: string[] = [];
    const inLogic = /\/(oneOf|anyOf|allOf|not)\/\d+$/.test(path);
    if (
      !inLogic &&
      schema.type === undefined &&
      schema["x-kubernetes-int-or-string"] !== true &&
      schema["x-kubernetes-preserve-unknown-fields"] !== true
    )
      out.push(path);
    if (isObject(schema.properties)) for (const [k, v] of Object.entries(schema.properties)) out.push(...untyped(v, `${path}/${k}`));
    if (isObject(schema.additionalProperties)) out.push(...untyped(schema.additionalProperties, `${path}/*`));
    if (isObject(schema.items)) out.push(...untyped(schema.items, `${path}/[]`));
    return out;
  }

  it("define v1 (served, stored) for the three snapshot kinds and v1 (served) with v1beta2 (stored) for the three group kinds, with structural schemas and the status subresource where the controllers write status", async () => {
    const crds = await loadYaml("deploy/kubernetes/digitalocean/crds.yaml");
    expect(crds.map((c) => (isObject(c.object.metadata) ? c.object.metadata.name : undefined)).sort()).toEqual([
      "volumegroupsnapshotclasses.groupsnapshot.storage.k8s.io",
      "volumegroupsnapshotcontents.groupsnapshot.storage.k8s.io",
      "volumegroupsnapshots.groupsnapshot.storage.k8s.io",
      "volumesnapshotclasses.snapshot.storage.k8s.io",
      "volumesnapshotcontents.snapshot.storage.k8s.io",
      "volumesnapshots.snapshot.storage.k8s.io",
    ]);
    for (const { object } of crds) {
      const spec = object.spec as JsonObject;
      const group = String(spec.group);
      const versions = (spec.versions as Json[]).filter(isObject);
      const stored = versions.filter((v) => v.storage === true);
      // external-snapshotter v8.6 serves the group API at v1 and keeps storing v1beta2 while clusters migrate.
      expect(stored.map((v) => v.name)).toEqual([group === "groupsnapshot.storage.k8s.io" ? "v1beta2" : "v1"]);
      expect(versions.find((v) => v.name === "v1")?.served).toBe(true);
      expect(stored[0]?.served).toBe(true);
      const kind = String((spec.names as JsonObject).kind);
      for (const version of versions.filter((v) => v.served === true)) {
        const schema = ((version.schema as JsonObject).openAPIV3Schema ?? null) as Json;
        expect(untyped(schema, kind)).toEqual([]);
        expect(isObject(version.subresources) && isObject(version.subresources.status)).toBe(!kind.endsWith("Class"));
      }
    }
  });
});
