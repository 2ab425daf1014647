/**
 * The one source of truth for every generated manifest (Kubernetes and
 * Nomad) and example: the driver name, the image, the sidecars with their
 * versions and flags, the socket paths and the object names. Change a value
 * here, run `npm run manifests`, commit the result; `test/deploy/` fails while
 * the committed files differ from what this produces.
 */
import pkg from "../../package.json" with { type: "json" };
import { LOCAL_DRIVER_NAME } from "../../src/config.js";

/** What a deployment is made of; `npm run manifests -- --driver-name X ...` overrides some of it for a custom output directory. */
export interface DeployConfig {
  /** CSI driver name: CSIDriver, provisioner of the StorageClasses, snapshot class driver, socket directories, `--driver-name`. */
  readonly driverName: string;
  /**
   * The driver's image: `<registry path>:<tag>`, by default IMAGE_NAME (no registry) tagged with the package version.
   * Point it at your registry with `--image` (or a kustomize `images:` entry naming IMAGE_NAME; see docs/kubernetes.md).
   */
  readonly image: string;
  readonly namespace: string;
  /** Prefix of the workload, service account and RBAC names (`csi-do` as in the Go driver's manifests, so an apply updates them in place). */
  readonly namePrefix: string;
  /** Name of the default StorageClass and VolumeSnapshotClass, and prefix of the other classes. */
  readonly classPrefix: string;
  /** Whether the StorageClass and VolumeSnapshotClass are annotated as the cluster default. */
  readonly defaultClasses: boolean;
  /**
   * The one switch for metrics: the plugin's --debug-addr (/metrics, /health), the controller sidecars'
   * --http-endpoint, their named container ports, and a headless Service per workload selecting them.
   */
  readonly metrics: boolean;
  /**
   * The local backend's own identity: a driver name (and so a topology key, socket directory and CSIDriver) and
   * object and class names of its own, so it installs beside the DigitalOcean driver in one cluster. A cluster
   * moving from the single-node layout of earlier releases keeps its volumes' driver name with
   * `npm run manifests -- --out DIR --local-driver-name dobs.csi.digitalocean.com` (see docs/multi-node.md).
   */
  readonly local: LocalDeployConfig;
}

export interface LocalDeployConfig {
  readonly driverName: string;
  readonly namePrefix: string;
  readonly classPrefix: string;
}

export const PACKAGE_VERSION: string = pkg.version;

/** The image's name without a registry: what `docker build -t` names it and what a kustomize `images:` entry matches. */
export const IMAGE_NAME = "do-csi-plugin";

export const DEFAULT_CONFIG: DeployConfig = {
  // Change the driver name here (and only here) to rename it in every manifest.
  driverName: "dobs.csi.digitalocean.com",
  image: `${IMAGE_NAME}:v${PACKAGE_VERSION}`,
  namespace: "kube-system",
  namePrefix: "csi-do",
  classPrefix: "do-block-storage",
  defaultClasses: true,
  metrics: true,
  local: { driverName: LOCAL_DRIVER_NAME, namePrefix: "csi-local", classPrefix: "local-volume" },
};

/** The configuration the local backend's objects are built from: the shared settings with the local identity. */
export function localVariant(config: DeployConfig): DeployConfig {
  return { ...config, ...config.local };
}

/** Secret holding the DigitalOcean API token, as the Go driver's manifests expect it. */
export const TOKEN_SECRET = { name: "digitalocean", key: "access-token" } as const;
/** Environment variable the controller reads the token from (the Go manifests' name; `--token` accepts it as an alias). */
export const TOKEN_ENV = "DIGITALOCEAN_ACCESS_TOKEN";
export const API_URL = "https://api.digitalocean.com/";

/** Name of the driver's container in every pod. */
export const PLUGIN_CONTAINER = "csi-do-plugin";

/** Where the kubelet looks for plugins and registration sockets. */
export const KUBELET_DIR = "/var/lib/kubelet";
export const REGISTRATION_DIR = `${KUBELET_DIR}/plugins_registry/`;
export const SOCKET_FILE = "csi.sock";

/** Host directory of the node plugin's socket; the registrar reports `<this>/csi.sock` to the kubelet. */
export function pluginHostDir(config: DeployConfig): string {
  return `${KUBELET_DIR}/plugins/${config.driverName}`;
}

/** Controller pod: the plugin and its sidecars share an emptyDir here. */
export const CONTROLLER_SOCKET_DIR = "/var/lib/csi/sockets/pluginproxy/";
/** Node pod: the plugin directory on the host is mounted here in the plugin and the registrar. */
export const NODE_SOCKET_DIR = "/csi";

/** Local backend: host directory holding volume images, snapshots and metadata (mounted at the same path). */
export const LOCAL_DATA_DIR = "/var/lib/do-csi-plugin";

/** Ports of the livenessprobe sidecars' /healthz (the node pod uses the host network, so its port is off the common 9808). */
export const CONTROLLER_HEALTH_PORT = 9808;
export const NODE_HEALTH_PORT = 9809;

/**
 * Metrics ports (deploy.metrics): the plugin's --debug-addr and the controller sidecars' --http-endpoint, each
 * with its container port name (at most 15 characters). The node pod uses the host network: its plugin port is
 * taken on every node.
 */
export const PLUGIN_METRICS_PORT = { name: "metrics", port: 9810 } as const;
export const SIDECAR_METRICS_PORTS = {
  provisioner: { name: "prov-metrics", port: 9811 },
  attacher: { name: "attach-metrics", port: 9812 },
  resizer: { name: "resize-metrics", port: 9813 },
  snapshotter: { name: "snap-metrics", port: 9814 },
} as const;

export type SidecarName = "provisioner" | "attacher" | "resizer" | "snapshotter" | "registrar" | "livenessprobe" | "snapshotController";

export interface Sidecar {
  readonly container: string;
  readonly image: string;
  /** Flags besides the socket address (and, for the probe, the port). */
  readonly args: readonly string[];
}

const SIG_STORAGE = "registry.k8s.io/sig-storage";

/**
 * kubernetes-csi sidecars, current releases (CSI spec 1.12, Kubernetes 1.31+).
 * Flags follow the Go driver's where they change behaviour: ext4 by default,
 * the attacher's 30 min reconcile and 2 min timeout, the resizer's 30 s
 * timeout without the in-use check (DigitalOcean volumes grow online).
 */
export const SIDECARS: Readonly<Record<SidecarName, Sidecar>> = {
  provisioner: { container: "csi-provisioner", image: `${SIG_STORAGE}/csi-provisioner:v6.3.0`, args: ["--default-fstype=ext4", "--v=2"] },
  attacher: {
    container: "csi-attacher",
    image: `${SIG_STORAGE}/csi-attacher:v4.13.0`,
    args: ["--reconcile-sync=30m", "--timeout=2m", "--v=2"],
  },
  resizer: {
    container: "csi-resizer",
    image: `${SIG_STORAGE}/csi-resizer:v2.2.1`,
    args: ["--timeout=30s", "--handle-volume-inuse-error=false", "--v=2"],
  },
  snapshotter: { container: "csi-snapshotter", image: `${SIG_STORAGE}/csi-snapshotter:v8.6.0`, args: ["--timeout=2m", "--v=2"] },
  registrar: { container: "csi-node-driver-registrar", image: `${SIG_STORAGE}/csi-node-driver-registrar:v2.18.0`, args: ["--v=2"] },
  livenessprobe: { container: "liveness-probe", image: `${SIG_STORAGE}/livenessprobe:v2.20.0`, args: ["--probe-timeout=3s"] },
  snapshotController: { container: "snapshot-controller", image: `${SIG_STORAGE}/snapshot-controller:v8.6.0`, args: ["--v=2"] },
};

/** The kinds of deployment generated: DigitalOcean (drop-in for the Go driver) and the single-node local backend. */
export type Variant = "digitalocean" | "local";
