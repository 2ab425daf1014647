import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { FLAGS } from "../../src/cli/options.js";
import { envName } from "../../src/cli/flags.js";
import { parseEndpoint } from "../../src/util/endpoint.js";
import { DEFAULT_CONFIG, PLUGIN_CONTAINER, TOKEN_ENV, TOKEN_SECRET, SIDECARS, localVariant } from "../../deploy/generate/config.js";
import { NO_FORMAT_ATTRIBUTE } from "../../deploy/generate/examples.js";
import { EXAMPLES_DIR, NOMAD_DIR, generateFiles, staleFiles } from "../../deploy/generate/main.js";
import {
  REPO_ROOT,
  containers,
  envValue,
  expandedArgs,
  flagValues,
  isObject,
  listFiles,
  loadManifests,
  podVolume,
  volumePathOf,
  workloads,
  type JsonObject,
  type LoadedDoc,
  type Workload,
} from "./manifests.js";

const VARIANTS = ["digitalocean", "local"] as const;
type VariantName = (typeof VARIANTS)[number];
const docsOf = new Map<VariantName, LoadedDoc[]>();
let examples: LoadedDoc[];

beforeAll(async () => {
  for (const variant of VARIANTS) docsOf.set(variant, await loadManifests(`deploy/kubernetes/${variant}`));
  examples = await loadManifests(EXAMPLES_DIR);
});

/** Driver and class names of a variant: DigitalOcean keeps the Go driver's, the local backend has its own. */
function identity(variant: VariantName): { driverName: string; classPrefix: string } {
  return variant === "digitalocean" ? DEFAULT_CONFIG : localVariant(DEFAULT_CONFIG);
}

function variantDocs(variant: VariantName): LoadedDoc[] {
  const docs = docsOf.get(variant);
  if (!docs) throw new Error(`no manifests for ${variant}`);
  return docs;
}

function byKind(docs: readonly LoadedDoc[], kind: string): JsonObject[] {
  return docs.filter((d) => d.object.kind === kind).map((d) => d.object);
}

function nameOf(object: JsonObject): string {
  return isObject(object.metadata) ? String(object.metadata.name) : "";
}

function pluginWorkloads(variant: VariantName): Workload[] {
  return workloads(variantDocs(variant)).filter((w) => containers(w.pod).some((c) => c.name === PLUGIN_CONTAINER));
}

function plugin(w: Workload): JsonObject {
  const found = containers(w.pod).find((c) => c.name === PLUGIN_CONTAINER);
  if (!found) throw new Error(`${w.name} has no ${PLUGIN_CONTAINER}`);
  return found;
}

function container(w: Workload, name: string): JsonObject | undefined {
  return containers(w.pod).find((c) => c.name === name);
}

/** The plugin's socket: the volume and file the --endpoint of the plugin container points at. */
function pluginSocket(w: Workload): { volume: string; rest: string } {
  const endpoint = flagValues(expandedArgs(plugin(w))).get("endpoint");
  expect(endpoint, `${w.name}: --endpoint`).toBeDefined();
  const parsed = parseEndpoint(endpoint ?? "");
  if (parsed.kind !== "unix") throw new Error(`${w.name}: endpoint ${endpoint ?? ""} is not a unix socket`);
  const where = volumePathOf(plugin(w), parsed.path);
  if (!where) throw new Error(`${w.name}: the endpoint ${parsed.path} is on no volume, so no sidecar can reach it`);
  return where;
}

describe("committed files are what the generator produces", () => {
  it("every generated file is up to date (run `npm run manifests` after changing deploy/generate/)", async () => {
    expect(await staleFiles(generateFiles())).toEqual([]);
  });

  it("no stray manifest lies beside the generated ones", async () => {
    const generated = new Set(generateFiles().keys());
    const onDisk = [...(await listFiles("deploy/kubernetes")), ...(await listFiles(NOMAD_DIR)), ...(await listFiles(EXAMPLES_DIR))];
    const stray = onDisk.filter((f) => !generated.has(f) && !f.endsWith("README.md"));
    expect(stray).toEqual([]);
  });

  it("every example directory has a README", async () => {
    const dirs = new Set(
      [...generateFiles().keys()].filter((f) => f.startsWith(`${EXAMPLES_DIR}/`)).map((f) => f.split("/").slice(0, 3).join("/")),
    );
    expect(dirs.size).toBe(9);
    for (const dir of dirs) await expect(readFile(join(REPO_ROOT, dir, "README.md"), "utf8"), dir).resolves.toMatch(/kubectl/);
  });

  it("each driver name is set in one place: another name replaces every occurrence", () => {
    const renamed = generateFiles({
      ...DEFAULT_CONFIG,
      driverName: "block.csi.example.com",
      local: { ...DEFAULT_CONFIG.local, driverName: "local.csi.example.com" },
    });
    const leftovers = [...renamed]
      .filter(([, content]) => content.includes(DEFAULT_CONFIG.driverName) || content.includes(DEFAULT_CONFIG.local.driverName))
      .map(([path]) => path);
    expect(leftovers).toEqual([]);
    expect(renamed.get("deploy/kubernetes/digitalocean/driver.yaml")).toContain("/var/lib/kubelet/plugins/block.csi.example.com/csi.sock");
    expect(renamed.get("deploy/kubernetes/local/driver.yaml")).toContain("/var/lib/kubelet/plugins/local.csi.example.com/csi.sock");
  });
});

describe.each(VARIANTS)("%s manifests agree with the CLI and with each other", (variant) => {
  it("name the same driver everywhere: CSIDriver, StorageClasses, VolumeSnapshotClass, --driver-name, socket directories", () => {
    const docs = variantDocs(variant);
    const drivers = byKind(docs, "CSIDriver").map(nameOf);
    const { driverName, classPrefix } = identity(variant);
    expect(drivers).toEqual([driverName]);
    const name = drivers[0];
    const classes = byKind(docs, "StorageClass");
    expect(classes.map(nameOf).sort()).toEqual([classPrefix, `${classPrefix}-retain`, `${classPrefix}-xfs`, `${classPrefix}-xfs-retain`]);
    for (const sc of classes) expect(sc.provisioner, nameOf(sc)).toBe(name);
    for (const vsc of byKind(docs, "VolumeSnapshotClass")) expect(vsc.driver).toBe(name);
    const plugins = pluginWorkloads(variant);
    expect(plugins.length).toBeGreaterThan(0);
    for (const w of plugins) {
      expect(flagValues(expandedArgs(plugin(w))).get("driver-name"), w.name).toBe(name);
      for (const v of Array.isArray(w.pod.volumes) ? w.pod.volumes.filter(isObject) : []) {
        const hostPath = isObject(v.hostPath) ? String(v.hostPath.path) : "";
        if (hostPath.startsWith("/var/lib/kubelet/plugins/")) expect(hostPath).toBe(`/var/lib/kubelet/plugins/${name ?? ""}`);
      }
    }
  });

  it("CSIDriver: attach required (DigitalOcean) or storage capacity (local), pod info on mount, fsGroup policy; expandable StorageClasses", () => {
    const [driver] = byKind(variantDocs(variant), "CSIDriver");
    expect(driver?.spec).toMatchObject({ podInfoOnMount: true, fsGroupPolicy: "ReadWriteOnceWithFSType" });
    // Local volumes are served where their data is: nothing attaches them, and the scheduler reads each node's capacity.
    expect({
      attachRequired: (driver?.spec as JsonObject).attachRequired,
      storageCapacity: (driver?.spec as JsonObject).storageCapacity,
    }).toEqual(
      variant === "local" ? { attachRequired: false, storageCapacity: true } : { attachRequired: true, storageCapacity: undefined },
    );
    const classes = byKind(variantDocs(variant), "StorageClass");
    for (const sc of classes) expect(sc.allowVolumeExpansion).toBe(true);
    const defaults = classes.filter(
      (sc) =>
        isObject(sc.metadata) &&
        isObject(sc.metadata.annotations) &&
        sc.metadata.annotations["storageclass.kubernetes.io/is-default-class"] === "true",
    );
    expect(defaults.map(nameOf)).toEqual([identity(variant).classPrefix]);
    // DigitalOcean keeps the Go driver's immutable fields (Immediate, `fstype`); local volumes wait for their pod's node.
    for (const sc of classes) expect(sc.volumeBindingMode).toBe(variant === "local" ? "WaitForFirstConsumer" : undefined);
    for (const sc of classes.filter((c) => nameOf(c).includes("-xfs"))) expect(Object.values(sc.parameters as JsonObject)).toEqual(["xfs"]);
  });

  it("every sidecar dials the socket the plugin's --endpoint serves", () => {
    for (const w of pluginWorkloads(variant)) {
      const socket = pluginSocket(w);
      const sidecars = containers(w.pod).filter((c) => c.name !== PLUGIN_CONTAINER);
      expect(sidecars.length).toBeGreaterThan(0);
      for (const c of sidecars) {
        const address = flagValues(expandedArgs(c)).get("csi-address");
        expect(address, `${w.name}/${String(c.name)} --csi-address`).toBeDefined();
        expect(volumePathOf(c, address ?? ""), `${w.name}/${String(c.name)}`).toEqual(socket);
      }
    }
  });

  it("the registrar's --kubelet-registration-path is the host path of the plugin's socket, and it registers in plugins_registry", () => {
    const registrars = pluginWorkloads(variant).filter((w) => container(w, SIDECARS.registrar.container));
    expect(registrars.length).toBe(1);
    for (const w of registrars) {
      const socket = pluginSocket(w);
      const volume = podVolume(w.pod, socket.volume);
      const hostDir = isObject(volume?.hostPath) ? String(volume.hostPath.path) : undefined;
      expect(hostDir, "the node plugin's socket must be on a hostPath volume").toBeDefined();
      const registrar = container(w, SIDECARS.registrar.container) ?? {};
      expect(flagValues(expandedArgs(registrar)).get("kubelet-registration-path")).toBe(`${hostDir ?? ""}/${socket.rest}`);
      const registration = volumePathOf(registrar, "/registration");
      const registrationVolume = podVolume(w.pod, registration?.volume ?? "");
      expect(isObject(registrationVolume?.hostPath) ? registrationVolume.hostPath.path : undefined).toBe(
        "/var/lib/kubelet/plugins_registry/",
      );
    }
  });

  it("the node plugin is privileged, sees /dev, and mounts the kubelet directory with Bidirectional propagation", () => {
    const nodePlugins = pluginWorkloads(variant).filter((w) => flagValues(expandedArgs(plugin(w))).get("mode") !== "controller");
    expect(nodePlugins.length).toBe(1);
    for (const w of nodePlugins) {
      const c = plugin(w);
      expect(isObject(c.securityContext) && c.securityContext.privileged).toBe(true);
      const mounts = Array.isArray(c.volumeMounts) ? c.volumeMounts.filter(isObject) : [];
      const kubelet = mounts.find((m) => m.mountPath === "/var/lib/kubelet");
      expect(kubelet?.mountPropagation).toBe("Bidirectional");
      expect(isObject(podVolume(w.pod, String(kubelet?.name))?.hostPath)).toBe(true);
      const dev = mounts.find((m) => m.mountPath === "/dev");
      const devVolume = podVolume(w.pod, String(dev?.name));
      expect(isObject(devVolume?.hostPath) ? devVolume.hostPath.path : undefined).toBe("/dev");
    }
  });

  it("passes the plugin only flags the CLI knows, and only env vars it reads", () => {
    const known = new Set(FLAGS.map((f) => f.name));
    const envVars = new Set(FLAGS.flatMap((f) => [envName(f.name), ...(f.envAliases ?? [])]));
    for (const w of pluginWorkloads(variant)) {
      const c = plugin(w);
      for (const flag of flagValues(expandedArgs(c)).keys()) expect(known, `${w.name}: --${flag}`).toContain(flag);
      for (const e of Array.isArray(c.env) ? c.env.filter(isObject) : []) {
        const name = String(e.name);
        // Variables referenced as $(NAME) in the args are for the kubelet's expansion, NODE_OPTIONS is Node's own;
        // any other must be one the CLI reads.
        if (name !== "NODE_OPTIONS" && !(Array.isArray(c.args) && c.args.some((a) => String(a).includes(`$(${name})`))))
          expect(envVars, `${w.name}: env ${name}`).toContain(name);
      }
    }
  });

  it("runs the image built from this repository everywhere the plugin runs", () => {
    for (const w of workloads(variantDocs(variant))) {
      for (const c of [...containers(w.pod), ...containers(w.pod, "initContainers")]) {
        if (c.name === PLUGIN_CONTAINER || String(c.image).startsWith("do-csi-plugin")) expect(c.image).toBe(DEFAULT_CONFIG.image);
        expect(String(c.image), `${String(c.name)} image is pinned`).toMatch(/:v?\d+\.\d+\.\d+$/);
      }
    }
  });
});

describe("DigitalOcean: drop-in for the Go driver's release manifests", () => {
  it("keeps the Go manifests' object names, so an apply updates them in place", () => {
    const docs = variantDocs("digitalocean");
    const names = new Set(docs.map((d) => `${String(d.object.kind)}/${nameOf(d.object)}`));
    for (const expected of [
      "StatefulSet/csi-do-controller",
      "DaemonSet/csi-do-node",
      "ServiceAccount/csi-do-controller-sa",
      "ServiceAccount/csi-do-node-sa",
      "ClusterRole/csi-do-provisioner-role",
      "ClusterRole/csi-do-attacher-role",
      "ClusterRole/csi-do-snapshotter-role",
      "ClusterRole/csi-do-resizer-role",
      "ClusterRoleBinding/csi-do-provisioner-binding",
      "VolumeSnapshotClass/do-block-storage",
      "StatefulSet/snapshot-controller",
    ]) {
      expect(names, expected).toContain(expected);
    }
    // Selectors are immutable: they must be the Go manifests' labels.
    const controller = docs.find((d) => d.object.kind === "StatefulSet" && nameOf(d.object) === "csi-do-controller")?.object;
    expect((controller?.spec as JsonObject).selector).toEqual({ matchLabels: { app: "csi-do-controller" } });
    expect((controller?.spec as JsonObject).replicas).toBe(1);
    const node = docs.find((d) => d.object.kind === "DaemonSet")?.object;
    expect((node?.spec as JsonObject).selector).toEqual({ matchLabels: { app: "csi-do-node" } });
  });

  it("the controller reads the token from the Secret the Go driver uses, through an env var --token accepts", () => {
    const [controller] = pluginWorkloads("digitalocean").filter((w) => flagValues(expandedArgs(plugin(w))).get("mode") === "controller");
    expect(controller).toBeDefined();
    const c = plugin(controller as Workload);
    expect(envValue(c, TOKEN_ENV)).toEqual({ secretKeyRef: { name: TOKEN_SECRET.name, key: TOKEN_SECRET.key } });
    expect(FLAGS.find((f) => f.name === "token")?.envAliases).toContain(TOKEN_ENV);
    expect(expandedArgs(c).some((a) => a.startsWith("--token"))).toBe(false);
    // The node plugin must not get it: without a token the driver serves the node service only.
    const [node] = pluginWorkloads("digitalocean").filter((w) => flagValues(expandedArgs(plugin(w))).get("mode") === "node");
    expect(envValue(plugin(node as Workload), TOKEN_ENV)).toBeUndefined();
  });
});

describe("local: the driver on every node", () => {
  function daemonSet(): Workload {
    const [w] = pluginWorkloads("local");
    if (w?.doc.object.kind !== "DaemonSet") throw new Error("the local plugin runs in no DaemonSet");
    return w;
  }
  function sidecarFlags(name: keyof typeof SIDECARS): Map<string, string> {
    const c = container(daemonSet(), SIDECARS[name].container);
    expect(c, name).toBeDefined();
    return flagValues(stringArgs(c ?? {}));
  }
  function stringArgs(c: JsonObject): string[] {
    return Array.isArray(c.args) ? c.args.map(String) : [];
  }
  function downward(c: JsonObject | undefined, name: string): string | undefined {
    const value = c ? envValue(c, name) : undefined;
    return isObject(value) && isObject(value.fieldRef) ? String(value.fieldRef.fieldPath) : undefined;
  }
  function rulesOf(kind: "ClusterRole" | "Role", name: string): JsonObject[] {
    const role = byKind(variantDocs("local"), kind).find((r) => nameOf(r) === name);
    expect(role, `${kind}/${name}`).toBeDefined();
    return Array.isArray(role?.rules) ? role.rules.filter(isObject) : [];
  }
  function allows(rules: readonly JsonObject[], group: string, resource: string, verbs: readonly string[]): boolean {
    return verbs.every((verb) =>
      rules.some(
        (r) =>
          Array.isArray(r.apiGroups) &&
          r.apiGroups.includes(group) &&
          Array.isArray(r.resources) &&
          r.resources.includes(resource) &&
          Array.isArray(r.verbs) &&
          r.verbs.includes(verb),
      ),
    );
  }
  /** The roles bound to the DaemonSet's service account, by kind. */
  function boundRoles(kind: "ClusterRole" | "Role"): string[] {
    const sa = String(daemonSet().pod.serviceAccountName);
    return byKind(variantDocs("local"), `${kind}Binding`)
      .filter((b) => Array.isArray(b.subjects) && b.subjects.some((s) => isObject(s) && s.name === sa))
      .map((b) => String((b.roleRef as JsonObject).name));
  }

  it("one plugin per node, for its own pool: --node-deployment, the node's name as node id", () => {
    const w = daemonSet();
    const flags = flagValues(expandedArgs(plugin(w), { KUBE_NODE_NAME: "node-a" }));
    expect(flags.get("backend")).toBe("local");
    expect(flags.get("node-deployment")).toBe("true");
    expect(flags.get("node-id")).toBe("node-a");
    expect(downward(plugin(w), "KUBE_NODE_NAME")).toBe("spec.nodeName");
    // No other workload runs the plugin: nothing cluster-wide serves local volumes.
    expect(pluginWorkloads("local").map((x) => x.name)).toEqual([w.name]);
  });

  it("the provisioner runs in node-deployment mode and publishes each node's capacity, owned by the DaemonSet", () => {
    const flags = sidecarFlags("provisioner");
    expect(flags.get("node-deployment")).toBe("true");
    expect(flags.get("enable-capacity")).toBe("true");
    // Owner-reference level 1 from the pod is the DaemonSet: its CSIStorageCapacity objects go when it goes.
    expect(flags.get("capacity-ownerref-level")).toBe("1");
    const provisioner = container(daemonSet(), SIDECARS.provisioner.container);
    expect(downward(provisioner, "NODE_NAME")).toBe("spec.nodeName");
    expect(downward(provisioner, "POD_NAME")).toBe("metadata.name");
    expect(downward(provisioner, "NAMESPACE")).toBe("metadata.namespace");
  });

  it("the snapshotter runs in node-deployment mode, and the snapshot controller labels contents with their node", async () => {
    expect(sidecarFlags("snapshotter").get("node-deployment")).toBe("true");
    expect(downward(container(daemonSet(), SIDECARS.snapshotter.container), "NODE_NAME")).toBe("spec.nodeName");
    const controllers = workloads(await loadManifests("deploy/kubernetes/local")).filter((w) => w.name === "snapshot-controller");
    expect(controllers.length).toBe(1);
    const [controller] = containers((controllers[0] as Workload).pod);
    expect(flagValues(stringArgs(controller ?? {})).get("enable-distributed-snapshotting")).toBe("true");
    // Group snapshots: the gate on both, a default VolumeGroupSnapshotClass of the local driver, and the RBAC.
    expect(flagValues(stringArgs(controller ?? {})).get("feature-gates")).toBe("CSIVolumeGroupSnapshot=true");
    expect(sidecarFlags("snapshotter").get("feature-gates")).toBe("CSIVolumeGroupSnapshot=true");
    const [groupClass] = byKind(variantDocs("local"), "VolumeGroupSnapshotClass");
    expect(groupClass?.driver).toBe(identity("local").driverName);
    expect(
      allows(rulesOf("ClusterRole", "snapshot-controller-role"), "groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents", [
        "create",
        "delete",
      ]),
    ).toBe(true);
    const clusterRoles = boundRoles("ClusterRole").flatMap((name) => rulesOf("ClusterRole", name));
    expect(allows(clusterRoles, "groupsnapshot.storage.k8s.io", "volumegroupsnapshotcontents/status", ["update", "patch"])).toBe(true);
    expect(allows(rulesOf("ClusterRole", "snapshot-controller-role"), "", "nodes", ["get", "list", "watch"])).toBe(true);
  });

  it("no plugin container sets V8 flags: each would cost its starts 12-17 ms (src/cli/v8-flags.ts)", () => {
    for (const variant of VARIANTS)
      for (const w of pluginWorkloads(variant)) expect(envValue(plugin(w), "NODE_OPTIONS"), w.name).toBeUndefined();
  });

  it("no attacher; one resizer holds the lease and answers resizes for the node plugins", () => {
    const w = daemonSet();
    expect(container(w, SIDECARS.attacher.container)).toBeUndefined();
    const flags = sidecarFlags("resizer");
    expect(flags.get("leader-election")).toBe("true");
    expect(flags.get("leader-election-namespace")).toBe("$(NAMESPACE)");
    expect(downward(container(w, SIDECARS.resizer.container), "NAMESPACE")).toBe("metadata.namespace");
  });

  it("RBAC: the service account may manage CSIStorageCapacity, read its pod and DaemonSet, hold the resizer's lease, and do what each sidecar needs", () => {
    const roles = boundRoles("Role").flatMap((name) => rulesOf("Role", name));
    expect(allows(roles, "storage.k8s.io", "csistoragecapacities", ["get", "list", "watch", "create", "update", "delete"])).toBe(true);
    expect(allows(roles, "", "pods", ["get"])).toBe(true);
    expect(allows(roles, "apps", "daemonsets", ["get"])).toBe(true);
    expect(allows(roles, "coordination.k8s.io", "leases", ["get", "create", "update"])).toBe(true);
    const clusterRoles = boundRoles("ClusterRole").flatMap((name) => rulesOf("ClusterRole", name));
    expect(allows(clusterRoles, "", "persistentvolumes", ["create", "delete"])).toBe(true);
    expect(allows(clusterRoles, "", "nodes", ["get"])).toBe(true);
    expect(allows(clusterRoles, "storage.k8s.io", "csinodes", ["get"])).toBe(true);
    expect(allows(clusterRoles, "snapshot.storage.k8s.io", "volumesnapshotcontents/status", ["update"])).toBe(true);
    expect(allows(clusterRoles, "", "persistentvolumeclaims/status", ["patch"])).toBe(true);
    expect(allows(clusterRoles, "storage.k8s.io", "volumeattachments", ["update"])).toBe(false);
  });
});

describe("moving from the single-node local layout", () => {
  it("the generator keeps the old driver and class names for the DaemonSet, so existing PersistentVolumes and claims stay served", () => {
    const old = "dobs.csi.digitalocean.com";
    const files = generateFiles({
      ...DEFAULT_CONFIG,
      local: { ...DEFAULT_CONFIG.local, driverName: old, classPrefix: "do-block-storage" },
    });
    const driver = files.get("deploy/kubernetes/local/driver.yaml") ?? "";
    expect(driver).not.toContain(DEFAULT_CONFIG.local.driverName);
    expect(driver).toMatch(/kind: CSIDriver\nmetadata:\n {2}name: dobs\.csi\.digitalocean\.com\n/);
    expect(driver).toContain(`--driver-name=${old}`);
    expect(driver).toContain(`/var/lib/kubelet/plugins/${old}/csi.sock`);
    expect(driver).toMatch(/name: do-block-storage\n(?:.*\n)*?provisioner: dobs\.csi\.digitalocean\.com/);
    // The DaemonSet's own objects keep the local prefix: none replaces an object of the old StatefulSet layout.
    expect(driver).toContain("name: csi-local-node");
  });
});

describe("both drivers in one cluster", () => {
  it("have different driver names, socket directories, topology keys and class names", () => {
    const names = VARIANTS.map((v) => identity(v).driverName);
    expect(new Set(names).size).toBe(2);
    expect(names).toEqual(["dobs.csi.digitalocean.com", "local.csi.do-csi-plugin.io"]);
    const classes = VARIANTS.map((v) => new Set(byKind(variantDocs(v), "StorageClass").map(nameOf)));
    expect([...(classes[0] ?? [])].filter((c) => classes[1]?.has(c))).toEqual([]);
  });

  it("no object of one overwrites an object of the other (the shared snapshot controller is the same in both)", () => {
    const key = (d: LoadedDoc) => {
      const meta = d.object.metadata as JsonObject;
      return `${String(d.object.kind)}/${String(meta.namespace ?? "")}/${String(meta.name)}`;
    };
    const local = new Map(variantDocs("local").map((d) => [key(d), d]));
    for (const d of variantDocs("digitalocean")) {
      const same = local.get(key(d));
      if (!same) continue;
      // Only the snapshot API (CRDs) and the one snapshot controller may appear in both, and then identical.
      expect([d.file.split("/").pop(), key(d)], key(d)).toEqual([same.file.split("/").pop(), key(same)]);
      expect(["crds.yaml", "snapshot-controller.yaml"], key(d)).toContain(d.file.split("/").pop());
      expect(same.object, key(d)).toEqual(d.object);
    }
  });
});

describe("examples", () => {
  it("use the driver's classes and name", () => {
    const classNames = new Set(byKind(variantDocs("digitalocean"), "StorageClass").map(nameOf));
    const claims = byKind(examples, "PersistentVolumeClaim");
    expect(claims.length).toBeGreaterThan(8);
    for (const pvc of claims) expect(classNames, nameOf(pvc)).toContain((pvc.spec as JsonObject).storageClassName);
    const [pv] = byKind(examples, "PersistentVolume");
    expect((pv?.spec as JsonObject).csi).toMatchObject({
      driver: DEFAULT_CONFIG.driverName,
      volumeAttributes: { [NO_FORMAT_ATTRIBUTE]: "true" },
    });
    const [content] = byKind(examples, "VolumeSnapshotContent");
    expect(content?.spec).toMatchObject({ driver: DEFAULT_CONFIG.driverName, source: { snapshotHandle: expect.any(String) as unknown } });
  });

  it("the imported VolumeSnapshotContent and its VolumeSnapshot point at each other", () => {
    const [content] = byKind(examples, "VolumeSnapshotContent");
    const [snapshot] = byKind(examples, "VolumeSnapshot").filter(
      (s) => isObject(s.spec) && isObject(s.spec.source) && "volumeSnapshotContentName" in s.spec.source,
    );
    const ref = (content?.spec as JsonObject).volumeSnapshotRef as JsonObject;
    expect(ref.name).toBe(nameOf(snapshot ?? {}));
    expect(ref.namespace).toBe((snapshot?.metadata as JsonObject).namespace);
    expect(((snapshot?.spec as JsonObject).source as JsonObject).volumeSnapshotContentName).toBe(nameOf(content ?? {}));
  });

  it("every claim a pod, deployment or restore refers to exists", () => {
    const claims = new Set(byKind(examples, "PersistentVolumeClaim").map(nameOf));
    const snapshots = new Set(byKind(examples, "VolumeSnapshot").map(nameOf));
    for (const doc of examples) {
      const pod =
        doc.object.kind === "Pod"
          ? (doc.object.spec as JsonObject)
          : doc.object.kind === "Deployment"
            ? ((doc.object.spec as JsonObject).template as JsonObject).spec
            : undefined;
      if (isObject(pod)) {
        for (const v of Array.isArray(pod.volumes) ? pod.volumes.filter(isObject) : []) {
          if (isObject(v.persistentVolumeClaim)) expect(claims, doc.file).toContain(v.persistentVolumeClaim.claimName);
        }
      }
      if (doc.object.kind === "PersistentVolumeClaim" && isObject(doc.object.spec) && isObject(doc.object.spec.dataSource)) {
        expect(snapshots, doc.file).toContain(doc.object.spec.dataSource.name);
      }
    }
  });
});

describe("Nomad job specs", () => {
  async function hcl(file: string): Promise<string> {
    return readFile(join(REPO_ROOT, NOMAD_DIR, file), "utf8");
  }
  function attr(text: string, key: string): string[] {
    return [...text.matchAll(new RegExp(`^\\s*${key}\\s*=\\s*"([^"]*)"`, "gm"))].map((m) => m[1] ?? "");
  }
  function args(text: string): string[] {
    const block = /args\s*=\s*\[([\s\S]*?)\]/.exec(text)?.[1] ?? "";
    return [...block.matchAll(/"([^"]*)"/g)].map((m) => m[1] ?? "");
  }

  it.each([
    ["controller.nomad.hcl", "controller"],
    ["node.nomad.hcl", "node"],
  ])("%s: csi_plugin id is the driver name, the plugin serves <mount_dir>/csi.sock, flags exist", async (file, type) => {
    const text = await hcl(file);
    const csiPlugin = /csi_plugin\s*\{([^}]*)\}/.exec(text)?.[1] ?? "";
    expect(attr(csiPlugin, "id")).toEqual([DEFAULT_CONFIG.driverName]);
    expect(attr(csiPlugin, "type")).toEqual([type]);
    expect(/^job "[^"]+" \{\s*type\s*=\s*"([^"]+)"/m.exec(text)?.[1]).toBe(type === "controller" ? "service" : "system");
    const mountDir = attr(csiPlugin, "mount_dir")[0];
    const flags = flagValues(args(text));
    expect(flags.get("endpoint")).toBe(`unix://${mountDir ?? ""}/csi.sock`);
    expect(flags.get("mode")).toBe(type);
    expect(flags.get("driver-name")).toBe(DEFAULT_CONFIG.driverName);
    const known = new Set(FLAGS.map((f) => f.name));
    for (const flag of flags.keys()) expect(known, `--${flag}`).toContain(flag);
    expect(attr(text, "image")).toEqual([DEFAULT_CONFIG.image]);
  });

  it("the token reaches only the controller, through the env var --token reads", async () => {
    expect(await hcl("controller.nomad.hcl")).toContain(`${TOKEN_ENV}=`);
    expect(await hcl("node.nomad.hcl")).not.toContain(TOKEN_ENV);
    expect(attr(await hcl("volume.hcl"), "plugin_id")).toEqual([DEFAULT_CONFIG.driverName]);
  });
});
