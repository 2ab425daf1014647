/**
 * The manifests' metrics switch and image reference: with metrics on, every
 * metrics port (the plugin's --debug-addr, the controller sidecars'
 * --http-endpoint) is a named container port behind a headless Service of its
 * workload; with it off, none of that is generated. The image override that
 * docs/kubernetes.md documents is run through `kubectl kustomize` and must
 * rewrite the driver's image in every container, and nothing else.
 */
import { execFile } from "node:child_process";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import {
  DEFAULT_CONFIG,
  IMAGE_NAME,
  PLUGIN_CONTAINER,
  PLUGIN_METRICS_PORT,
  SIDECAR_METRICS_PORTS,
  SIDECARS,
  type DeployConfig,
} from "../../deploy/generate/config.js";
import { generateFiles, KUBERNETES_DIR, registryImage } from "../../deploy/generate/main.js";
import { findExecutable } from "../../src/mounter/host-tools.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { containers, expandedArgs, flagValues, isObject, REPO_ROOT, workloads, type JsonObject, type LoadedDoc } from "./manifests.js";

const execFileAsync = promisify(execFile);
const VARIANTS = ["digitalocean", "local"] as const;

/** The Kubernetes objects a configuration generates for a variant (parsed from the generator's output, not from disk). */
function generatedDocs(config: DeployConfig, variant: string): LoadedDoc[] {
  const docs: LoadedDoc[] = [];
  for (const [file, text] of generateFiles(config)) {
    if (!file.startsWith(`${KUBERNETES_DIR}/${variant}/`) || file.endsWith("kustomization.yaml")) continue;
    parseAllDocuments(text).forEach((doc, index) => {
      const object = doc.toJSON() as unknown;
      if (isObject(object as JsonObject)) docs.push({ file, index, object: object as JsonObject });
    });
  }
  return docs;
}

function portsOf(container: JsonObject): { name: string; containerPort: number }[] {
  return (Array.isArray(container.ports) ? container.ports.filter(isObject) : []).map((p) => ({
    name: String(p.name),
    containerPort: Number(p.containerPort),
  }));
}

const METRIC_PORT_NAMES = new Set<string>([PLUGIN_METRICS_PORT.name, ...Object.values(SIDECAR_METRICS_PORTS).map((p) => p.name)]);

/** Port of a `:port` listen address. */
function listenPort(address: string | undefined): number | undefined {
  const m = /^[^:]*:(\d+)$/.exec(address ?? "");
  return m ? Number(m[1]) : undefined;
}

describe("metrics switch", () => {
  it.each(VARIANTS)("%s: each metrics endpoint is a named container port behind its workload's headless Service", (variant) => {
    const docs = generatedDocs(DEFAULT_CONFIG, variant);
    const services = docs.filter((d) => d.object.kind === "Service").map((d) => d.object);
    let plugins = 0;
    for (const w of workloads(docs)) {
      const metered = containers(w.pod).filter((c) => portsOf(c).some((p) => METRIC_PORT_NAMES.has(p.name)));
      if (metered.length === 0) continue;
      for (const c of metered) {
        const flags = flagValues(expandedArgs(c));
        const [port] = portsOf(c).filter((p) => METRIC_PORT_NAMES.has(p.name));
        // The process listens where the port says: --debug-addr for the plugin, --http-endpoint for a sidecar.
        if (c.name === PLUGIN_CONTAINER) {
          plugins++;
          expect(listenPort(flags.get("debug-addr")), w.name).toBe(port?.containerPort);
        } else {
          expect(listenPort(flags.get("http-endpoint")), `${w.name}/${String(c.name)}`).toBe(port?.containerPort);
        }
      }
      const labels =
        isObject(w.doc.object.spec) && isObject(w.doc.object.spec.selector) ? w.doc.object.spec.selector.matchLabels : undefined;
      const service = services.find((s) => isObject(s.spec) && JSON.stringify(s.spec.selector) === JSON.stringify(labels));
      expect(service, `${w.name} has a metrics Service`).toBeDefined();
      const spec = service?.spec as JsonObject;
      expect(spec.clusterIP).toBe("None");
      const targets = (Array.isArray(spec.ports) ? spec.ports.filter(isObject) : []).map((p) => String(p.targetPort)).sort();
      expect(targets).toEqual(
        metered
          .flatMap((c) =>
            portsOf(c)
              .filter((p) => METRIC_PORT_NAMES.has(p.name))
              .map((p) => p.name),
          )
          .sort(),
      );
    }
    // Every plugin (DigitalOcean: controller and node; local: the one pod) serves metrics.
    expect(plugins).toBe(variant === "digitalocean" ? 2 : 1);
  });

  it("the controller sidecars' endpoints are their documented diagnostics flag, and the port names fit a Service (15 characters)", () => {
    for (const { name } of [PLUGIN_METRICS_PORT, ...Object.values(SIDECAR_METRICS_PORTS)])
      expect(name).toMatch(/^[a-z]([-a-z0-9]{0,13}[a-z0-9])?$/);
    const docs = generatedDocs(DEFAULT_CONFIG, "digitalocean");
    for (const sidecar of Object.keys(SIDECAR_METRICS_PORTS) as (keyof typeof SIDECAR_METRICS_PORTS)[]) {
      const found = workloads(docs)
        .flatMap((w) => containers(w.pod))
        .find((c) => c.name === SIDECARS[sidecar].container);
      expect(flagValues(expandedArgs(found ?? {})).get("http-endpoint"), sidecar).toBe(`:${SIDECAR_METRICS_PORTS[sidecar].port}`);
    }
  });

  it.each(VARIANTS)("%s: switched off, no flag, port or Service of metrics is generated", (variant) => {
    const docs = generatedDocs({ ...DEFAULT_CONFIG, metrics: false }, variant);
    expect(docs.filter((d) => d.object.kind === "Service")).toEqual([]);
    for (const w of workloads(docs)) {
      for (const c of containers(w.pod)) {
        const flags = flagValues(expandedArgs(c));
        const metered = Object.keys(SIDECAR_METRICS_PORTS).some(
          (k) => SIDECARS[k as keyof typeof SIDECAR_METRICS_PORTS].container === c.name,
        );
        // (The livenessprobe's --http-endpoint is its /healthz, not metrics: it stays.)
        expect(flags.has("debug-addr") || (metered && flags.has("http-endpoint")), `${w.name}/${String(c.name)}`).toBe(false);
        expect(portsOf(c).filter((p) => METRIC_PORT_NAMES.has(p.name))).toEqual([]);
      }
    }
  });
});

/** The `images:` override in docs/kubernetes.md (the first YAML block that has one). */
async function documentedOverride(): Promise<{ name: string; newName: string; newTag: string }> {
  const text = await readFile(join(REPO_ROOT, "docs/kubernetes.md"), "utf8");
  for (const block of text.matchAll(/```yaml\n([\s\S]*?)```/g)) {
    const kustomization = parse(block[1] ?? "") as { images?: { name: string; newName: string; newTag: string }[] } | null;
    const entry = kustomization?.images?.[0];
    if (entry) return entry;
  }
  throw new Error("docs/kubernetes.md documents no kustomize images: override");
}

describe("image reference", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTestDir("deploy-image");
  });
  afterAll(async () => {
    await removeTestDir(dir);
  });

  it("the documented images: entry names the image every driver container runs", async () => {
    const override = await documentedOverride();
    expect(override.name).toBe(IMAGE_NAME);
    expect(override.newName).toMatch(new RegExp(`/${IMAGE_NAME}$`));
    for (const variant of VARIANTS) {
      for (const w of workloads(generatedDocs(DEFAULT_CONFIG, variant))) {
        for (const c of [...containers(w.pod), ...containers(w.pod, "initContainers")]) {
          const [name] = String(c.image).split(":");
          if (c.name === PLUGIN_CONTAINER || name === IMAGE_NAME) expect(c.image).toBe(DEFAULT_CONFIG.image);
        }
      }
    }
  });

  it("a registry path given to the generator names the driver's image in every container that runs it", () => {
    const image = registryImage("registry.example.com/team/");
    expect(image).toBe(`registry.example.com/team/${IMAGE_NAME}:${DEFAULT_CONFIG.image.split(":")[1]}`);
    for (const variant of VARIANTS) {
      const all = workloads(generatedDocs({ ...DEFAULT_CONFIG, image }, variant)).flatMap((w) => [
        ...containers(w.pod),
        ...containers(w.pod, "initContainers"),
      ]);
      const driver = all.filter((c) => c.name === PLUGIN_CONTAINER || c.image === image);
      expect(driver.length).toBe(variant === "digitalocean" ? 3 : 1);
      for (const c of driver) expect(c.image).toBe(image);
      expect(all.filter((c) => String(c.image).startsWith(`${IMAGE_NAME}:`))).toEqual([]);
    }
  });

  it.each(VARIANTS)("%s: kubectl kustomize with the documented images: entry rewrites exactly the driver's image", async (variant) => {
    const kubectl = await findExecutable("kubectl");
    expect(kubectl, "kubectl is needed (Debian: apt-get install kubernetes-client; scripts/host-tools.sh does it)").toBeDefined();
    const override = await documentedOverride();
    // The variant's own kustomization plus the documented entry (what an overlay on it amounts to; this
    // form also works with the kustomize v2 of older kubectl releases, which took directories only as bases).
    const overlay = join(dir, variant);
    await cp(join(REPO_ROOT, KUBERNETES_DIR, variant), overlay, { recursive: true });
    const kustomization = await readFile(join(overlay, "kustomization.yaml"), "utf8");
    await writeFile(
      join(overlay, "kustomization.yaml"),
      `${kustomization}images:\n  - name: ${override.name}\n    newName: ${override.newName}\n    newTag: ${override.newTag}\n`,
    );
    const { stdout } = await execFileAsync(kubectl ?? "kubectl", ["kustomize", overlay], { maxBuffer: 16 * 1024 * 1024 });
    const docs = parseAllDocuments(stdout).map((d, index) => ({ file: "kustomized", index, object: d.toJSON() as JsonObject }));
    const images = workloads(docs).flatMap((w) =>
      [...containers(w.pod), ...containers(w.pod, "initContainers")].map((c) => String(c.image)),
    );
    const rewritten = `${override.newName}:${override.newTag}`;
    expect(images.filter((i) => i === rewritten).length).toBe(variant === "digitalocean" ? 3 : 1); // controller, node, init
    expect(images.filter((i) => i.startsWith(`${IMAGE_NAME}:`))).toEqual([]);
    const sidecarImages = new Set(Object.values(SIDECARS).map((s) => s.image));
    for (const image of images) if (image !== rewritten) expect(sidecarImages, image).toContain(image);
  });
});
