/**
 * Generates deploy/kubernetes/, deploy/nomad/ and the YAML of examples/kubernetes/
 * from deploy/generate/config.ts.
 *
 *   npm run manifests              write the committed files
 *   npm run manifests -- --check   exit 1 if a committed file differs (what the tests check)
 *   npm run manifests -- --out DIR [--driver-name N] [--image I] [--name-prefix P] [--class-prefix C] [--no-default-classes]
 *                          [--image-registry R] [--no-metrics] [--local-driver-name N] [--local-name-prefix P]
 *                          [--local-class-prefix C]
 *                                  write a customised copy under DIR (e.g. to run beside DOKS's managed driver, or with
 *                                  the image from your registry: --image-registry registry.example.com/team names
 *                                  registry.example.com/team/do-csi-plugin:v<package version>; --image names any reference;
 *                                  --local-* keep the names of an install of the single-node local layout: docs/multi-node.md)
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { DEFAULT_CONFIG, IMAGE_NAME, PACKAGE_VERSION, type DeployConfig } from "./config.js";
import { exampleFiles } from "./examples.js";
import { kubernetesFiles, kustomization } from "./kubernetes.js";
import { nomadFiles, renderHcl } from "./nomad.js";
import { renderYaml } from "./render.js";

export const KUBERNETES_DIR = "deploy/kubernetes";
export const NOMAD_DIR = "deploy/nomad";
export const EXAMPLES_DIR = "examples/kubernetes";

/** Repository root (two levels above this file). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

/** Every generated file: repository-relative path -> content. */
export function generateFiles(config: DeployConfig = DEFAULT_CONFIG): Map<string, string> {
  const files = new Map<string, string>();
  for (const file of [...kubernetesFiles(config, KUBERNETES_DIR), ...exampleFiles(config, EXAMPLES_DIR)])
    files.set(file.path, renderYaml(file));
  for (const variant of ["digitalocean", "local"]) files.set(`${KUBERNETES_DIR}/${variant}/kustomization.yaml`, kustomization());
  for (const file of nomadFiles(config, NOMAD_DIR)) files.set(file.path, renderHcl(file));
  return files;
}

/** Paths (relative to `root`) whose content on disk differs from `files`, or that are missing. */
export async function staleFiles(files: ReadonlyMap<string, string>, root: string = REPO_ROOT): Promise<string[]> {
  const stale: string[] = [];
  for (const [path, content] of files) {
    const onDisk = await readFile(join(root, path), "utf8").catch(() => undefined);
    if (onDisk !== content) stale.push(path);
  }
  return stale;
}

/** The driver's image under a registry path: `<registry>/do-csi-plugin:v<package version>`. */
export function registryImage(registry: string): string {
  return `${registry.replace(/\/+$/, "")}/${IMAGE_NAME}:v${PACKAGE_VERSION}`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      check: { type: "boolean", default: false },
      out: { type: "string" },
      "driver-name": { type: "string" },
      image: { type: "string" },
      "image-registry": { type: "string" },
      "name-prefix": { type: "string" },
      "class-prefix": { type: "string" },
      "no-default-classes": { type: "boolean", default: false },
      "no-metrics": { type: "boolean", default: false },
      "local-driver-name": { type: "string" },
      "local-name-prefix": { type: "string" },
      "local-class-prefix": { type: "string" },
    },
  });
  const customised =
    values["driver-name"] ??
    values.image ??
    values["image-registry"] ??
    values["name-prefix"] ??
    values["class-prefix"] ??
    values["local-driver-name"] ??
    values["local-name-prefix"] ??
    values["local-class-prefix"] ??
    (values["no-default-classes"] || values["no-metrics"] ? "" : undefined);
  if (customised !== undefined && values.out === undefined) {
    throw new Error(
      "--driver-name, --image, --image-registry, --name-prefix, --class-prefix, --no-default-classes, --no-metrics and --local-* need --out: the committed files always come from config.ts",
    );
  }
  if (values.image !== undefined && values["image-registry"] !== undefined) throw new Error("give --image or --image-registry, not both");
  const config: DeployConfig = {
    ...DEFAULT_CONFIG,
    ...(values["driver-name"] !== undefined ? { driverName: values["driver-name"] } : {}),
    ...(values.image !== undefined ? { image: values.image } : {}),
    ...(values["image-registry"] !== undefined ? { image: registryImage(values["image-registry"]) } : {}),
    ...(values["name-prefix"] !== undefined ? { namePrefix: values["name-prefix"] } : {}),
    ...(values["class-prefix"] !== undefined ? { classPrefix: values["class-prefix"] } : {}),
    ...(values["no-default-classes"] ? { defaultClasses: false } : {}),
    ...(values["no-metrics"] ? { metrics: false } : {}),
    local: {
      driverName: values["local-driver-name"] ?? DEFAULT_CONFIG.local.driverName,
      namePrefix: values["local-name-prefix"] ?? DEFAULT_CONFIG.local.namePrefix,
      classPrefix: values["local-class-prefix"] ?? DEFAULT_CONFIG.local.classPrefix,
    },
  };
  const files = generateFiles(config);
  const root = values.out !== undefined ? resolve(values.out) : REPO_ROOT;

  if (values.check) {
    const stale = await staleFiles(files, root);
    if (stale.length > 0) {
      process.stderr.write(`out of date (run npm run manifests):\n${stale.map((p) => `  ${p}`).join("\n")}\n`);
      process.exitCode = 1;
    } else {
      process.stdout.write(`${files.size} generated files are up to date\n`);
    }
    return;
  }
  for (const [path, content] of files) {
    const target = join(root, path);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, content);
  }
  process.stdout.write(`wrote ${files.size} files under ${root}\n`);
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((err: unknown) => {
    process.stderr.write(`manifests: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
