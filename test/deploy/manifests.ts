/**
 * Reading the committed manifests and examples back, and validating them:
 * built-in kinds with kubernetes-models' JSON-schema validators, the snapshot
 * kinds with the openAPIV3Schema of the CRDs this repository ships (strict:
 * unknown fields are errors, as with `kubectl apply --validate=strict`).
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { Ajv, type ValidateFunction } from "ajv";
import { parseAllDocuments } from "yaml";
import * as apiextensions from "kubernetes-models/apiextensions.k8s.io/v1";
import * as apps from "kubernetes-models/apps/v1";
import * as rbac from "kubernetes-models/rbac.authorization.k8s.io/v1";
import * as storage from "kubernetes-models/storage.k8s.io/v1";
import * as core from "kubernetes-models/v1";
import { ObjectMeta } from "@kubernetes-models/apimachinery/apis/meta/v1/ObjectMeta";
import { REPO_ROOT } from "../../deploy/generate/main.js";

export { REPO_ROOT };

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface LoadedDoc {
  /** Repository-relative file path. */
  readonly file: string;
  readonly index: number;
  readonly object: JsonObject;
}

export function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Every file under `dir` (repository-relative), recursively. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(abs: string): Promise<void> {
    for (const entry of await readdir(abs, { withFileTypes: true }).catch(() => [])) {
      const path = join(abs, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(relative(REPO_ROOT, path));
    }
  }
  await walk(join(REPO_ROOT, dir));
  return out.sort();
}

export async function loadYaml(file: string): Promise<LoadedDoc[]> {
  const text = await readFile(join(REPO_ROOT, file), "utf8");
  return parseAllDocuments(text).map((doc, index) => {
    if (doc.errors.length > 0) throw new Error(`${file} document ${index}: ${doc.errors.map((e) => e.message).join("; ")}`);
    const object = doc.toJSON() as Json;
    if (!isObject(object)) throw new Error(`${file} document ${index} is not a mapping`);
    return { file, index, object };
  });
}

/** The Kubernetes objects of every YAML file under the given directories (kustomization.yaml excluded). */
export async function loadManifests(...dirs: string[]): Promise<LoadedDoc[]> {
  const docs: LoadedDoc[] = [];
  for (const dir of dirs) {
    for (const file of await listFiles(dir)) {
      if (file.endsWith(".yaml") && !file.endsWith("kustomization.yaml")) docs.push(...(await loadYaml(file)));
    }
  }
  return docs;
}

// --- validation -------------------------------------------------------------------

type ModelClass = new (data: JsonObject) => { validate(): void };
const MODELS: Record<string, Record<string, unknown>> = {
  v1: core,
  "apps/v1": apps,
  "rbac.authorization.k8s.io/v1": rbac,
  "storage.k8s.io/v1": storage,
  "apiextensions.k8s.io/v1": apiextensions,
};

function builtInModel(apiVersion: string, kind: string): ModelClass | undefined {
  const candidate = MODELS[apiVersion]?.[kind];
  return typeof candidate === "function" ? (candidate as ModelClass) : undefined;
}

/** A copy of a structural schema in which objects with declared properties accept no others. */
function strict(schema: Json): Json {
  if (Array.isArray(schema)) return schema.map(strict);
  if (!isObject(schema)) return schema;
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    out[key] =
      key === "properties" && isObject(value)
        ? Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strict(v)]))
        : key === "enum" || key === "required"
          ? value
          : strict(value);
  }
  if (isObject(schema.properties) && schema.additionalProperties === undefined && schema["x-kubernetes-preserve-unknown-fields"] !== true)
    out.additionalProperties = false;
  return out;
}

export class ManifestValidator {
  readonly #ajv = new Ajv({ allErrors: true, strict: false });
  readonly #custom = new Map<string, ValidateFunction>();

  constructor(crds: readonly JsonObject[]) {
    this.#ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
    this.#ajv.addFormat("date-time", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
    for (const crd of crds) {
      const spec = crd.spec;
      if (!isObject(spec) || !isObject(spec.names) || !Array.isArray(spec.versions)) throw new Error("malformed CRD");
      for (const version of spec.versions) {
        if (!isObject(version) || version.served !== true || !isObject(version.schema)) continue;
        const schema = version.schema.openAPIV3Schema;
        if (schema === undefined) throw new Error(`CRD ${String(spec.names.kind)} ${String(version.name)} has no schema`);
        this.#custom.set(
          `${String(spec.group)}/${String(version.name)}:${String(spec.names.kind)}`,
          this.#ajv.compile(strict(schema) as object),
        );
      }
    }
  }

  /** Kinds this validator knows: built-in ones and the CRDs' served versions. */
  knows(apiVersion: string, kind: string): boolean {
    return builtInModel(apiVersion, kind) !== undefined || this.#custom.has(`${apiVersion}:${kind}`);
  }

  /** Errors of one object against its schema; empty when it is valid. */
  errors(object: JsonObject): string[] {
    const apiVersion = typeof object.apiVersion === "string" ? object.apiVersion : "";
    const kind = typeof object.kind === "string" ? object.kind : "";
    const Model = builtInModel(apiVersion, kind);
    if (Model) {
      try {
        new Model(object).validate();
        return [];
      } catch (err) {
        return [(err as Error).message];
      }
    }
    const validate = this.#custom.get(`${apiVersion}:${kind}`);
    if (!validate) return [`no schema for ${apiVersion} ${kind}`];
    const errors: string[] = [];
    const { metadata, ...rest } = object;
    if (!validate({ ...rest, metadata: {} })) {
      errors.push(
        ...(validate.errors ?? []).map(
          (e) =>
            `${e.instancePath || "/"} ${e.message ?? "invalid"}${e.params && "additionalProperty" in e.params ? ` (${String(e.params.additionalProperty)})` : ""}`,
        ),
      );
    }
    if (!isObject(metadata)) errors.push("metadata is required");
    else {
      try {
        new ObjectMeta(metadata).validate();
      } catch (err) {
        errors.push(`metadata: ${(err as Error).message}`);
      }
      if (typeof metadata.name !== "string" || metadata.name === "") errors.push("metadata.name is required");
    }
    return errors;
  }
}

// --- pod templates -------------------------------------------------------------------

export interface Workload {
  readonly doc: LoadedDoc;
  readonly name: string;
  readonly pod: JsonObject;
}

/** StatefulSets, DaemonSets and Deployments with their pod template spec. */
export function workloads(docs: readonly LoadedDoc[]): Workload[] {
  const out: Workload[] = [];
  for (const doc of docs) {
    const { kind, metadata, spec } = doc.object;
    if (kind !== "StatefulSet" && kind !== "DaemonSet" && kind !== "Deployment") continue;
    if (!isObject(spec) || !isObject(spec.template) || !isObject(spec.template.spec) || !isObject(metadata))
      throw new Error(`${doc.file}: workload without a pod template`);
    out.push({ doc, name: String(metadata.name), pod: spec.template.spec });
  }
  return out;
}

export function containers(pod: JsonObject, field: "containers" | "initContainers" = "containers"): JsonObject[] {
  const list = pod[field];
  return Array.isArray(list) ? list.filter(isObject) : [];
}

export function stringList(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}

/** A container's args with `$(VAR)` replaced by its literal env values (as the kubelet expands them). */
export function expandedArgs(container: JsonObject, overrides: Readonly<Record<string, string>> = {}): string[] {
  const env = new Map<string, string>();
  for (const e of Array.isArray(container.env) ? container.env.filter(isObject) : []) {
    if (typeof e.name === "string" && typeof e.value === "string") env.set(e.name, e.value);
  }
  for (const [k, v] of Object.entries(overrides)) env.set(k, v);
  return stringList(container.args).map((arg) =>
    arg.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (whole, name: string) => env.get(name) ?? whole),
  );
}

/** `--name=value` flags of an argument list (the manifests always use the `=` form). */
export function flagValues(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const arg of args) {
    const match = /^--?([^=]+)=(.*)$/.exec(arg);
    if (match?.[1] !== undefined) out.set(match[1], match[2] ?? "");
    else if (/^--?[^=]+$/.test(arg)) out.set(arg.replace(/^--?/, ""), "");
  }
  return out;
}

export function envValue(container: JsonObject, name: string): Json | undefined {
  const entry = (Array.isArray(container.env) ? container.env.filter(isObject) : []).find((e) => e.name === name);
  return entry === undefined ? undefined : (entry.value ?? entry.valueFrom);
}

/** The volume and the path inside it that a container path falls in (longest mountPath wins). */
export function volumePathOf(container: JsonObject, path: string): { volume: string; rest: string } | undefined {
  let best: { volume: string; rest: string; len: number } | undefined;
  for (const mount of Array.isArray(container.volumeMounts) ? container.volumeMounts.filter(isObject) : []) {
    const mountPath = String(mount.mountPath).replace(/\/+$/, "");
    if (path === mountPath || path.startsWith(`${mountPath}/`)) {
      if (!best || mountPath.length > best.len)
        best = { volume: String(mount.name), rest: path.slice(mountPath.length).replace(/^\//, ""), len: mountPath.length };
    }
  }
  return best && { volume: best.volume, rest: best.rest };
}

export function podVolume(pod: JsonObject, name: string): JsonObject | undefined {
  return (Array.isArray(pod.volumes) ? pod.volumes.filter(isObject) : []).find((v) => v.name === name);
}
