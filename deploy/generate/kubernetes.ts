/**
 * Kubernetes objects of the driver, built from config.ts. Names, labels and
 * RBAC of the DigitalOcean variant match the Go csi-digitalocean v4 release
 * manifests, so `kubectl apply` over an installed Go driver updates the same
 * objects in place instead of starting a second driver next to it.
 */
import { DaemonSet, StatefulSet } from "kubernetes-models/apps/v1";
import { ClusterRole, ClusterRoleBinding, Role, RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1";
import type { IPolicyRule } from "kubernetes-models/rbac.authorization.k8s.io/v1/PolicyRule";
import { CSIDriver, StorageClass } from "kubernetes-models/storage.k8s.io/v1";
import { Service, ServiceAccount } from "kubernetes-models/v1";
import type { IContainer } from "kubernetes-models/v1/Container";
import type { IContainerPort } from "kubernetes-models/v1/ContainerPort";
import type { IEnvVar } from "kubernetes-models/v1/EnvVar";
import type { IPodSpec } from "kubernetes-models/v1/PodSpec";
import type { IVolume } from "kubernetes-models/v1/Volume";
import type { IVolumeMount } from "kubernetes-models/v1/VolumeMount";
import {
  API_URL,
  CONTROLLER_HEALTH_PORT,
  CONTROLLER_SOCKET_DIR,
  KUBELET_DIR,
  LOCAL_DATA_DIR,
  NODE_HEALTH_PORT,
  NODE_SOCKET_DIR,
  PLUGIN_CONTAINER,
  PLUGIN_METRICS_PORT,
  REGISTRATION_DIR,
  SIDECAR_METRICS_PORTS,
  SIDECARS,
  SOCKET_FILE,
  TOKEN_ENV,
  localVariant,
  TOKEN_SECRET,
  pluginHostDir,
  type DeployConfig,
  type SidecarName,
  type Variant,
} from "./config.js";
import type { KubeObject, ManifestFile, Section } from "./render.js";
import {
  GROUP_SNAPSHOT_API_VERSION,
  GROUP_SNAPSHOT_GROUP,
  groupSnapshotCrds,
  type VolumeGroupSnapshotClass,
} from "./group-snapshot-api.js";
import { SNAPSHOT_API_VERSION, snapshotCrds, type VolumeSnapshotClass } from "./snapshot-api.js";

const DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class";
const DEFAULT_SNAPSHOT_CLASS_ANNOTATION = "snapshot.storage.kubernetes.io/is-default-class";
const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";
/** The udev rule DigitalOcean droplets ship that mounts new volumes under /mnt; it races with the node plugin. */
const DO_AUTOMOUNT_UDEV_RULE = "/etc/udev/rules.d/99-digitalocean-automount.rules";

function joinPath(dir: string, file: string): string {
  return `${dir.replace(/\/+$/, "")}/${file}`;
}

// --- names ------------------------------------------------------------------

export function names(config: DeployConfig) {
  const p = config.namePrefix;
  return {
    controller: `${p}-controller`,
    controllerSa: `${p}-controller-sa`,
    node: `${p}-node`,
    nodeSa: `${p}-node-sa`,
    metrics: (workload: string) => `${workload}-metrics`,
    service: p,
    role: (sidecar: string) => `${p}-${sidecar}-role`,
    binding: (sidecar: string) => `${p}-${sidecar}-binding`,
  };
}

// --- containers ---------------------------------------------------------------

const SIDECAR_SECURITY = { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } };
const SMALL = { requests: { cpu: "10m", memory: "32Mi" } };

/** A kubernetes-csi sidecar that dials the plugin at `$(ADDRESS)`. */
function sidecar(
  name: SidecarName,
  socketMount: IVolumeMount,
  extraArgs: readonly string[] = [],
  extraEnv: readonly IEnvVar[] = [],
): IContainer {
  const spec = SIDECARS[name];
  return {
    name: spec.container,
    image: spec.image,
    imagePullPolicy: "IfNotPresent",
    args: ["--csi-address=$(ADDRESS)", ...spec.args, ...extraArgs],
    env: [{ name: "ADDRESS", value: joinPath(socketMount.mountPath, SOCKET_FILE) }, ...extraEnv],
    volumeMounts: [socketMount],
    securityContext: SIDECAR_SECURITY,
    resources: SMALL,
  };
}

type MeteredSidecar = keyof typeof SIDECAR_METRICS_PORTS;

/** A controller sidecar; with metrics on, its diagnostics server (/metrics) on a named port. */
function controllerSidecar(config: DeployConfig, name: MeteredSidecar, socketMount: IVolumeMount): IContainer {
  if (!config.metrics) return sidecar(name, socketMount);
  const { name: portName, port } = SIDECAR_METRICS_PORTS[name];
  return { ...sidecar(name, socketMount, [`--http-endpoint=:${port}`]), ports: [{ name: portName, containerPort: port, protocol: "TCP" }] };
}

function controllerSidecars(config: DeployConfig, socketMount: IVolumeMount): IContainer[] {
  return (["provisioner", "attacher", "snapshotter", "resizer"] as const).map((name) => controllerSidecar(config, name, socketMount));
}

/** With metrics on: the plugin's --debug-addr flag, and its port (named for the metrics Service). */
function pluginMetrics(config: DeployConfig): { args: string[]; ports: IContainerPort[] } {
  if (!config.metrics) return { args: [], ports: [] };
  const { name, port } = PLUGIN_METRICS_PORT;
  return { args: [`--debug-addr=:${port}`], ports: [{ name, containerPort: port, protocol: "TCP" }] };
}

/** A headless Service whose endpoints are the workload's pods, with every named metrics port of its containers, for Prometheus to discover. */
function metricsService(config: DeployConfig, workload: string, podContainers: readonly IContainer[]): Service[] {
  if (!config.metrics) return [];
  const metricPorts = new Set<string>([PLUGIN_METRICS_PORT.name, ...Object.values(SIDECAR_METRICS_PORTS).map((p) => p.name)]);
  const ports = podContainers.flatMap((c) => c.ports ?? []).filter((p) => p.name !== undefined && metricPorts.has(p.name));
  return [
    new Service({
      metadata: { name: names(config).metrics(workload), namespace: config.namespace, labels: { app: workload } },
      spec: {
        clusterIP: "None",
        selector: { app: workload },
        ports: ports.map((p) => ({ name: p.name, port: p.containerPort, targetPort: p.name, protocol: "TCP" })),
      },
    }),
  ];
}

function livenessSidecar(socketMount: IVolumeMount, port: number): IContainer {
  return sidecar("livenessprobe", socketMount, [`--http-endpoint=:${port}`]);
}

/** The probe on the plugin container, answered by the livenessprobe sidecar (which calls the plugin's Probe). */
function healthProbe(port: number): Pick<IContainer, "ports" | "livenessProbe"> {
  return {
    ports: [{ name: "healthz", containerPort: port, protocol: "TCP" }],
    livenessProbe: {
      httpGet: { path: "/healthz", port: "healthz" },
      initialDelaySeconds: 10,
      timeoutSeconds: 3,
      periodSeconds: 10,
      failureThreshold: 5,
    },
  };
}

const NODE_NAME_ENV: IEnvVar = { name: "KUBE_NODE_NAME", valueFrom: { fieldRef: { fieldPath: "spec.nodeName" } } };

function registrar(config: DeployConfig, socketMount: IVolumeMount): IContainer {
  return {
    ...sidecar(
      "registrar",
      socketMount,
      ["--kubelet-registration-path=$(DRIVER_REG_SOCK_PATH)"],
      [{ name: "DRIVER_REG_SOCK_PATH", value: joinPath(pluginHostDir(config), SOCKET_FILE) }, NODE_NAME_ENV],
    ),
    volumeMounts: [socketMount, { name: "registration-dir", mountPath: "/registration/" }],
  };
}

const PRIVILEGED = { privileged: true, allowPrivilegeEscalation: true, capabilities: { add: ["SYS_ADMIN"] } };

/** Mounts a node plugin needs: the kubelet directory with Bidirectional propagation (so its mounts reach the host) and /dev. */
const NODE_MOUNTS: IVolumeMount[] = [
  { name: "pods-mount-dir", mountPath: KUBELET_DIR, mountPropagation: "Bidirectional" },
  { name: "device-dir", mountPath: "/dev" },
];

const NODE_VOLUMES = (config: DeployConfig): IVolume[] => [
  { name: "registration-dir", hostPath: { path: REGISTRATION_DIR, type: "DirectoryOrCreate" } },
  { name: "plugin-dir", hostPath: { path: pluginHostDir(config), type: "DirectoryOrCreate" } },
  { name: "pods-mount-dir", hostPath: { path: KUBELET_DIR, type: "Directory" } },
  { name: "device-dir", hostPath: { path: "/dev" } },
];

// --- RBAC -----------------------------------------------------------------------

const core = (resources: string[], verbs: string[]): IPolicyRule => ({ apiGroups: [""], resources, verbs });
const storage = (resources: string[], verbs: string[]): IPolicyRule => ({ apiGroups: ["storage.k8s.io"], resources, verbs });
const snapshots = (resources: string[], verbs: string[]): IPolicyRule => ({ apiGroups: ["snapshot.storage.k8s.io"], resources, verbs });
const READ = ["get", "list", "watch"];
const groupSnapshots = (resources: string[], verbs: string[]): IPolicyRule => ({ apiGroups: [GROUP_SNAPSHOT_GROUP], resources, verbs });
/** Group snapshots: the feature gate both the snapshot controller and the local driver's snapshotter run with. */
const GROUP_SNAPSHOT_GATE = "--feature-gates=CSIVolumeGroupSnapshot=true";
/** What the local driver's snapshotter needs for group snapshots, besides its snapshot rules. */
export const GROUP_SNAPSHOTTER_RULES: readonly IPolicyRule[] = [
  groupSnapshots(["volumegroupsnapshotclasses"], READ),
  groupSnapshots(["volumegroupsnapshotcontents"], ["get", "list", "watch", "update", "patch"]),
  groupSnapshots(["volumegroupsnapshotcontents/status"], ["update", "patch"]),
];
const EVENTS = core(["events"], ["list", "watch", "create", "update", "patch"]);

/** What each controller sidecar may do (the kubernetes-csi sidecars' documented RBAC). */
export const CONTROLLER_RULES: Readonly<Record<"provisioner" | "attacher" | "resizer" | "snapshotter", readonly IPolicyRule[]>> = {
  provisioner: [
    core(["persistentvolumes"], ["get", "list", "watch", "create", "patch", "delete"]),
    core(["persistentvolumeclaims"], ["get", "list", "watch", "update"]),
    storage(["storageclasses"], READ),
    EVENTS,
    snapshots(["volumesnapshots"], ["get", "list"]),
    snapshots(["volumesnapshotcontents"], ["get", "list"]),
    storage(["csinodes"], READ),
    core(["nodes"], READ),
    storage(["volumeattachments"], READ),
    storage(["volumeattributesclasses"], READ),
  ],
  attacher: [
    core(["persistentvolumes"], ["get", "list", "watch", "update", "patch"]),
    core(["nodes"], READ),
    storage(["csinodes"], READ),
    storage(["volumeattachments"], ["get", "list", "watch", "update", "patch"]),
    storage(["volumeattachments/status"], ["patch"]),
  ],
  resizer: [
    core(["persistentvolumes"], ["get", "list", "watch", "update", "patch"]),
    core(["persistentvolumeclaims"], READ),
    core(["persistentvolumeclaims/status"], ["update", "patch"]),
    core(["pods"], READ),
    EVENTS,
    storage(["volumeattributesclasses"], READ),
  ],
  snapshotter: [
    EVENTS,
    snapshots(["volumesnapshotclasses"], READ),
    snapshots(["volumesnapshotcontents"], ["get", "list", "watch", "update", "patch"]),
    snapshots(["volumesnapshotcontents/status"], ["update", "patch"]),
  ],
};

function roleAndBinding(config: DeployConfig, role: string, rules: readonly IPolicyRule[], serviceAccount: string): KubeObject[] {
  const n = names(config);
  return [
    new ClusterRole({ metadata: { name: n.role(role) }, rules: [...rules] }),
    new ClusterRoleBinding({
      metadata: { name: n.binding(role) },
      subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace: config.namespace }],
      roleRef: { kind: "ClusterRole", name: n.role(role), apiGroup: "rbac.authorization.k8s.io" },
    }),
  ];
}

function controllerRbac(config: DeployConfig, serviceAccount: string): KubeObject[] {
  return (Object.keys(CONTROLLER_RULES) as (keyof typeof CONTROLLER_RULES)[]).flatMap((sidecarName) =>
    roleAndBinding(config, sidecarName, CONTROLLER_RULES[sidecarName], serviceAccount),
  );
}

// --- cluster-wide objects ---------------------------------------------------------

function csiDriver(config: DeployConfig, variant: Variant): CSIDriver {
  const perNode = variant === "local";
  return new CSIDriver({
    metadata: { name: config.driverName },
    spec: {
      // DigitalOcean: ControllerPublishVolume attaches the volume to the droplet. Local: each node's plugin serves its
      // own pool, nothing attaches a volume across nodes, and the plugin offers no ControllerPublishVolume.
      attachRequired: !perNode,
      // Local: the provisioner publishes each node's capacity, and the scheduler places a pod only where its
      // WaitForFirstConsumer claims fit.
      ...(perNode ? { storageCapacity: true } : {}),
      // The pod's name, namespace and uid reach NodePublishVolume (as with the Go driver).
      podInfoOnMount: true,
      // What Kubernetes does when the Go driver's CSIDriver leaves it unset: fsGroup ownership for RWO volumes with an fsType.
      fsGroupPolicy: "ReadWriteOnceWithFSType",
      volumeLifecycleModes: ["Persistent"],
    },
  });
}

function storageClasses(config: DeployConfig, variant: Variant): StorageClass[] {
  // StorageClass parameters and volumeBindingMode are immutable: the DigitalOcean classes keep the Go driver's
  // (legacy `fstype` key, Immediate binding) so applying them over an existing install succeeds. DigitalOcean
  // volumes can attach to any droplet of the region, so waiting for the consumer buys nothing there; local volumes
  // live on one node, so the local classes wait for the pod to be scheduled.
  const fsKey = variant === "digitalocean" ? "fstype" : "csi.storage.k8s.io/fstype";
  const bindingMode = variant === "digitalocean" ? undefined : "WaitForFirstConsumer";
  const classes: { suffix: string; xfs: boolean; retain: boolean }[] = [
    { suffix: "", xfs: false, retain: false },
    { suffix: "-retain", xfs: false, retain: true },
    { suffix: "-xfs", xfs: true, retain: false },
    { suffix: "-xfs-retain", xfs: true, retain: true },
  ];
  return classes.map(
    ({ suffix, xfs, retain }) =>
      new StorageClass({
        metadata: {
          name: `${config.classPrefix}${suffix}`,
          ...(suffix === "" && config.defaultClasses ? { annotations: { [DEFAULT_CLASS_ANNOTATION]: "true" } } : {}),
        },
        provisioner: config.driverName,
        ...(xfs ? { parameters: { [fsKey]: "xfs" } } : {}),
        ...(retain ? { reclaimPolicy: "Retain" } : {}),
        ...(bindingMode ? { volumeBindingMode: bindingMode } : {}),
        allowVolumeExpansion: true,
      }),
  );
}

function volumeGroupSnapshotClass(config: DeployConfig): VolumeGroupSnapshotClass {
  return {
    apiVersion: GROUP_SNAPSHOT_API_VERSION,
    kind: "VolumeGroupSnapshotClass",
    metadata: { name: config.classPrefix, annotations: { "groupsnapshot.storage.kubernetes.io/is-default-class": "true" } },
    driver: config.driverName,
    deletionPolicy: "Delete",
  };
}

function volumeSnapshotClass(config: DeployConfig): VolumeSnapshotClass {
  return {
    apiVersion: SNAPSHOT_API_VERSION,
    kind: "VolumeSnapshotClass",
    metadata: {
      name: config.classPrefix,
      ...(config.defaultClasses ? { annotations: { [DEFAULT_SNAPSHOT_CLASS_ANNOTATION]: "true" } } : {}),
    },
    driver: config.driverName,
    deletionPolicy: "Delete",
  };
}

// --- DigitalOcean: controller StatefulSet and node DaemonSet -----------------------

function doController(config: DeployConfig): KubeObject[] {
  const n = names(config);
  const socketMount: IVolumeMount = { name: "socket-dir", mountPath: CONTROLLER_SOCKET_DIR };
  const metrics = pluginMetrics(config);
  const health = healthProbe(CONTROLLER_HEALTH_PORT);
  const plugin: IContainer = {
    name: PLUGIN_CONTAINER,
    image: config.image,
    imagePullPolicy: "IfNotPresent",
    args: [
      "--endpoint=$(CSI_ENDPOINT)",
      "--mode=controller",
      `--driver-name=${config.driverName}`,
      "--url=$(DIGITALOCEAN_API_URL)",
      "--default-volumes-page-size=200",
      ...metrics.args,
    ],
    env: [
      { name: "CSI_ENDPOINT", value: `unix://${joinPath(CONTROLLER_SOCKET_DIR, SOCKET_FILE)}` },
      { name: "DIGITALOCEAN_API_URL", value: API_URL },
      // Read from the environment by --token (never on the command line, where `ps` would show it).
      { name: TOKEN_ENV, valueFrom: { secretKeyRef: { name: TOKEN_SECRET.name, key: TOKEN_SECRET.key } } },
    ],
    ...health,
    ports: [...(health.ports ?? []), ...metrics.ports],
    volumeMounts: [socketMount],
    securityContext: SIDECAR_SECURITY,
    resources: { requests: { cpu: "10m", memory: "64Mi" } },
  };
  const containers = [...controllerSidecars(config, socketMount), livenessSidecar(socketMount, CONTROLLER_HEALTH_PORT), plugin];
  const statefulSet = new StatefulSet({
    metadata: { name: n.controller, namespace: config.namespace },
    spec: {
      serviceName: n.service,
      // Exactly one controller: a StatefulSet never runs a second pod while the first may still be alive,
      // so the sidecars need no leader election.
      replicas: 1,
      selector: { matchLabels: { app: n.controller } },
      template: {
        metadata: { labels: { app: n.controller, role: n.service }, annotations: { [DEFAULT_CONTAINER_ANNOTATION]: PLUGIN_CONTAINER } },
        spec: {
          priorityClassName: "system-cluster-critical",
          serviceAccountName: n.controllerSa,
          containers,
          volumes: [{ name: "socket-dir", emptyDir: {} }],
        },
      },
    },
  });
  return [
    statefulSet,
    ...metricsService(config, n.controller, containers),
    new ServiceAccount({ metadata: { name: n.controllerSa, namespace: config.namespace } }),
    ...controllerRbac(config, n.controllerSa),
  ];
}

function doNode(config: DeployConfig): KubeObject[] {
  const n = names(config);
  const socketMount: IVolumeMount = { name: "plugin-dir", mountPath: NODE_SOCKET_DIR };
  const metrics = pluginMetrics(config);
  const health = healthProbe(NODE_HEALTH_PORT);
  const plugin: IContainer = {
    name: PLUGIN_CONTAINER,
    image: config.image,
    imagePullPolicy: "IfNotPresent",
    args: [
      "--endpoint=$(CSI_ENDPOINT)",
      "--mode=node",
      `--driver-name=${config.driverName}`,
      "--url=$(DIGITALOCEAN_API_URL)",
      ...metrics.args,
    ],
    env: [
      { name: "CSI_ENDPOINT", value: `unix://${joinPath(NODE_SOCKET_DIR, SOCKET_FILE)}` },
      { name: "DIGITALOCEAN_API_URL", value: API_URL },
    ],
    ...health,
    ports: [...(health.ports ?? []), ...metrics.ports],
    securityContext: PRIVILEGED,
    volumeMounts: [socketMount, ...NODE_MOUNTS],
    resources: { requests: { cpu: "10m", memory: "64Mi" } },
  };
  const podSpec: IPodSpec = {
    priorityClassName: "system-node-critical",
    serviceAccountName: n.nodeSa,
    // The droplet metadata service (node id, region) answers on the host network.
    hostNetwork: true,
    // Volumes must be usable on every node, tainted ones included.
    tolerations: [{ operator: "Exists" }],
    initContainers: [
      {
        // The automount rule of DigitalOcean droplets mounts new volumes briefly and makes the node plugin's
        // mkfs/mount fail with "resource busy"; the driver's own image removes it.
        name: "automount-udev-deleter",
        image: config.image,
        imagePullPolicy: "IfNotPresent",
        command: ["rm", "-f", DO_AUTOMOUNT_UDEV_RULE],
        volumeMounts: [{ name: "udev-rules-dir", mountPath: "/etc/udev/rules.d/" }],
        resources: SMALL,
      },
    ],
    containers: [registrar(config, socketMount), livenessSidecar(socketMount, NODE_HEALTH_PORT), plugin],
    volumes: [...NODE_VOLUMES(config), { name: "udev-rules-dir", hostPath: { path: "/etc/udev/rules.d/" } }],
  };
  const daemonSet = new DaemonSet({
    metadata: { name: n.node, namespace: config.namespace },
    spec: {
      selector: { matchLabels: { app: n.node } },
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { app: n.node, role: n.service }, annotations: { [DEFAULT_CONTAINER_ANNOTATION]: PLUGIN_CONTAINER } },
        spec: podSpec,
      },
    },
  });
  return [
    daemonSet,
    ...metricsService(config, n.node, podSpec.containers),
    new ServiceAccount({ metadata: { name: n.nodeSa, namespace: config.namespace } }),
    ...roleAndBinding(config, "node-driver-registrar", [core(["events"], ["get", "list", "watch", "create", "update", "patch"])], n.nodeSa),
  ];
}

// --- local: the whole driver on every node ------------------------------------------------

const DOWNWARD = (name: string, fieldPath: string): IEnvVar => ({ name, valueFrom: { fieldRef: { fieldPath } } });
const POD_NAMESPACE_ENV = DOWNWARD("NAMESPACE", "metadata.namespace");
const POD_NAME_ENV = DOWNWARD("POD_NAME", "metadata.name");
/** The node name the provisioner and snapshotter read in their node-deployment mode. */
const SIDECAR_NODE_ENV = DOWNWARD("NODE_NAME", "spec.nodeName");

/**
 * Flags of the controller sidecars in the per-node pod. Each instance of the plugin owns its node's pool, so the
 * provisioner and the snapshotter run in their node-deployment modes (each handles what belongs to its node) and
 * the provisioner publishes a CSIStorageCapacity per node, owned by the DaemonSet (owner-reference level 1: pod ->
 * DaemonSet) so that deleting the DaemonSet deletes them. The plugin advertises node expansion only, so the
 * resizer answers resizes without calling the plugin (its "trivial" path: it updates the PV and the kubelet calls
 * NodeExpandVolume on the volume's node); one resizer among the pods holds the lease.
 */
const PER_NODE_SIDECAR: Readonly<Record<"provisioner" | "snapshotter" | "resizer", { args: string[]; env: IEnvVar[] }>> = {
  provisioner: {
    args: ["--node-deployment=true", "--enable-capacity=true", "--capacity-ownerref-level=1", "--capacity-poll-interval=1m"],
    env: [SIDECAR_NODE_ENV, POD_NAMESPACE_ENV, POD_NAME_ENV],
  },
  snapshotter: { args: ["--node-deployment=true", GROUP_SNAPSHOT_GATE], env: [SIDECAR_NODE_ENV] },
  resizer: { args: ["--leader-election=true", "--leader-election-namespace=$(NAMESPACE)"], env: [POD_NAMESPACE_ENV] },
};

function perNodeSidecar(config: DeployConfig, name: keyof typeof PER_NODE_SIDECAR, socketMount: IVolumeMount): IContainer {
  const { args, env } = PER_NODE_SIDECAR[name];
  const metrics = config.metrics ? SIDECAR_METRICS_PORTS[name] : undefined;
  return {
    ...sidecar(name, socketMount, [...args, ...(metrics ? [`--http-endpoint=:${metrics.port}`] : [])], env),
    ...(metrics ? { ports: [{ name: metrics.name, containerPort: metrics.port, protocol: "TCP" }] } : {}),
  };
}

const apps = (resources: string[], verbs: string[]): IPolicyRule => ({ apiGroups: ["apps"], resources, verbs });
const leases: IPolicyRule = {
  apiGroups: ["coordination.k8s.io"],
  resources: ["leases"],
  verbs: ["get", "watch", "list", "delete", "update", "create"],
};

/**
 * Namespaced rights of the per-node sidecars: the provisioner's CSIStorageCapacity objects (and reading its own pod
 * and DaemonSet for their owner reference), the resizer's leader-election lease.
 */
export const PER_NODE_NAMESPACED_RULES: Readonly<Record<"capacity" | "resizer-lease", readonly IPolicyRule[]>> = {
  capacity: [
    storage(["csistoragecapacities"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
    core(["pods"], ["get"]),
    apps(["daemonsets"], ["get"]),
  ],
  "resizer-lease": [leases],
};

function namespacedRoleAndBinding(config: DeployConfig, role: string, rules: readonly IPolicyRule[], serviceAccount: string): KubeObject[] {
  const n = names(config);
  return [
    new Role({ metadata: { name: n.role(role), namespace: config.namespace }, rules: [...rules] }),
    new RoleBinding({
      metadata: { name: n.binding(role), namespace: config.namespace },
      subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace: config.namespace }],
      roleRef: { kind: "Role", name: n.role(role), apiGroup: "rbac.authorization.k8s.io" },
    }),
  ];
}

function localNode(config: DeployConfig): KubeObject[] {
  const n = names(config);
  const socketMount: IVolumeMount = { name: "plugin-dir", mountPath: NODE_SOCKET_DIR };
  const metrics = pluginMetrics(config);
  const health = healthProbe(CONTROLLER_HEALTH_PORT);
  const plugin: IContainer = {
    name: PLUGIN_CONTAINER,
    image: config.image,
    imagePullPolicy: "IfNotPresent",
    args: [
      "--endpoint=$(CSI_ENDPOINT)",
      "--backend=local",
      "--node-deployment=true",
      `--driver-name=${config.driverName}`,
      `--data-dir=${LOCAL_DATA_DIR}`,
      "--node-id=$(KUBE_NODE_NAME)",
      ...metrics.args,
    ],
    env: [{ name: "CSI_ENDPOINT", value: `unix://${joinPath(NODE_SOCKET_DIR, SOCKET_FILE)}` }, NODE_NAME_ENV],
    ...health,
    ports: [...(health.ports ?? []), ...metrics.ports],
    securityContext: PRIVILEGED,
    volumeMounts: [
      socketMount,
      ...NODE_MOUNTS,
      // Same path inside and outside: loop devices record their backing file's path.
      { name: "data-dir", mountPath: LOCAL_DATA_DIR },
    ],
    resources: { requests: { cpu: "10m", memory: "64Mi" } },
  };
  const containers = [
    perNodeSidecar(config, "provisioner", socketMount),
    perNodeSidecar(config, "snapshotter", socketMount),
    perNodeSidecar(config, "resizer", socketMount),
    registrar(config, socketMount),
    livenessSidecar(socketMount, CONTROLLER_HEALTH_PORT),
    plugin,
  ];
  const daemonSet = new DaemonSet({
    metadata: { name: n.node, namespace: config.namespace },
    spec: {
      selector: { matchLabels: { app: n.node } },
      // One node's pool is served by one pod at a time (it locks the data directory): replace, never surge.
      updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } },
      template: {
        metadata: { labels: { app: n.node, role: n.service }, annotations: { [DEFAULT_CONTAINER_ANNOTATION]: PLUGIN_CONTAINER } },
        spec: {
          priorityClassName: "system-node-critical",
          serviceAccountName: n.nodeSa,
          // Volumes must be usable on every node, tainted ones included.
          tolerations: [{ operator: "Exists" }],
          containers,
          volumes: [...NODE_VOLUMES(config), { name: "data-dir", hostPath: { path: LOCAL_DATA_DIR, type: "DirectoryOrCreate" } }],
        },
      },
    },
  });
  return [
    daemonSet,
    ...metricsService(config, n.node, containers),
    new ServiceAccount({ metadata: { name: n.nodeSa, namespace: config.namespace } }),
    ...(["provisioner", "snapshotter", "resizer"] as const).flatMap((name) =>
      roleAndBinding(config, name, CONTROLLER_RULES[name], n.nodeSa),
    ),
    ...roleAndBinding(config, "group-snapshotter", GROUP_SNAPSHOTTER_RULES, n.nodeSa),
    ...namespacedRoleAndBinding(config, "capacity", PER_NODE_NAMESPACED_RULES.capacity, n.nodeSa),
    ...namespacedRoleAndBinding(config, "resizer-lease", PER_NODE_NAMESPACED_RULES["resizer-lease"], n.nodeSa),
    ...roleAndBinding(config, "node-driver-registrar", [core(["events"], ["get", "list", "watch", "create", "update", "patch"])], n.nodeSa),
  ];
}

// --- snapshot controller ------------------------------------------------------------------

function snapshotController(config: DeployConfig): KubeObject[] {
  const name = "snapshot-controller";
  const spec = SIDECARS.snapshotController;
  return [
    new StatefulSet({
      metadata: { name, namespace: config.namespace },
      spec: {
        serviceName: name,
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            priorityClassName: "system-cluster-critical",
            serviceAccountName: name,
            containers: [
              {
                name: spec.container,
                image: spec.image,
                imagePullPolicy: "IfNotPresent",
                // Distributed snapshotting: a VolumeSnapshotContent of a volume bound to one node is labelled with that
                // node, for the local driver's per-node snapshotter. One controller serves both drivers in a cluster.
                args: [...spec.args, "--enable-distributed-snapshotting=true", GROUP_SNAPSHOT_GATE],
                securityContext: SIDECAR_SECURITY,
                resources: SMALL,
              },
            ],
          },
        },
      },
    }),
    new ServiceAccount({ metadata: { name, namespace: config.namespace } }),
    new ClusterRole({
      metadata: { name: `${name}-role` },
      rules: [
        core(["persistentvolumes"], READ),
        // Distributed snapshotting: which node a volume's node affinity selects.
        core(["nodes"], READ),
        core(["persistentvolumeclaims"], ["get", "list", "watch", "update", "patch"]),
        EVENTS,
        snapshots(["volumesnapshotclasses"], READ),
        snapshots(["volumesnapshotcontents"], ["create", "get", "list", "watch", "update", "delete", "patch"]),
        snapshots(["volumesnapshotcontents/status"], ["patch"]),
        snapshots(["volumesnapshots"], ["get", "list", "watch", "update", "patch"]),
        snapshots(["volumesnapshots/status"], ["update", "patch"]),
        // Group snapshots: the controller creates the group's contents and the members' snapshots and contents.
        snapshots(["volumesnapshots"], ["create", "delete"]),
        groupSnapshots(["volumegroupsnapshotclasses"], READ),
        groupSnapshots(["volumegroupsnapshotcontents"], ["create", "get", "list", "watch", "update", "delete", "patch"]),
        groupSnapshots(["volumegroupsnapshotcontents/status"], ["patch"]),
        groupSnapshots(["volumegroupsnapshots"], ["get", "list", "watch", "update", "patch"]),
        groupSnapshots(["volumegroupsnapshots/status"], ["update", "patch"]),
      ],
    }),
    new ClusterRoleBinding({
      metadata: { name: `${name}-binding` },
      subjects: [{ kind: "ServiceAccount", name, namespace: config.namespace }],
      roleRef: { kind: "ClusterRole", name: `${name}-role`, apiGroup: "rbac.authorization.k8s.io" },
    }),
  ];
}

// --- files ----------------------------------------------------------------------------------

const CRDS_HEADER = (dir: string) =>
  `Snapshot CustomResourceDefinitions (snapshot.storage.k8s.io/v1 and groupsnapshot.storage.k8s.io/v1, as external-snapshotter v8.6 serves them).
Apply before ${dir}/ (its VolumeSnapshotClass needs them) unless the cluster already has them:
  kubectl apply -f ${dir}/crds.yaml
  kubectl wait --for condition=established --timeout=60s -f ${dir}/crds.yaml`;

const SNAPSHOT_CONTROLLER_HEADER = `The cluster-wide snapshot controller (external-snapshotter), needed once per cluster for VolumeSnapshots.
Skip it where the cluster already runs one (DigitalOcean Kubernetes does).`;

export function kubernetesFiles(config: DeployConfig, root: string): ManifestFile[] {
  const doDir = `${root}/digitalocean`;
  const localDir = `${root}/local`;
  const local = localVariant(config);
  const clusterObjects = (variantConfig: DeployConfig, variant: Variant): Section => ({
    comment: "The driver, its StorageClasses and its VolumeSnapshotClass (and, local volumes, its VolumeGroupSnapshotClass).",
    objects: [
      csiDriver(variantConfig, variant),
      ...storageClasses(variantConfig, variant),
      volumeSnapshotClass(variantConfig),
      ...(variant === "local" ? [volumeGroupSnapshotClass(variantConfig)] : []),
    ],
  });
  return [
    { path: `${doDir}/crds.yaml`, header: CRDS_HEADER(doDir), sections: [{ objects: [...snapshotCrds(), ...groupSnapshotCrds()] }] },
    {
      path: `${doDir}/driver.yaml`,
      header: `do-csi-plugin for DigitalOcean Block Storage: a drop-in for the csi-digitalocean v4 release manifests
(same object names, driver name, StorageClasses and token Secret). Needs the Secret first:
  kubectl -n ${config.namespace} create secret generic ${TOKEN_SECRET.name} --from-literal=${TOKEN_SECRET.key}=<DigitalOcean API token>`,
      sections: [
        clusterObjects(config, "digitalocean"),
        {
          comment: "Controller plugin: one replica with the provisioner, attacher, snapshotter and resizer sidecars.",
          objects: doController(config),
        },
        { comment: "Node plugin: on every node, privileged, mounting into the kubelet directory.", objects: doNode(config) },
      ],
    },
    { path: `${doDir}/snapshot-controller.yaml`, header: SNAPSHOT_CONTROLLER_HEADER, sections: [{ objects: snapshotController(config) }] },
    { path: `${localDir}/crds.yaml`, header: CRDS_HEADER(localDir), sections: [{ objects: [...snapshotCrds(), ...groupSnapshotCrds()] }] },
    {
      path: `${localDir}/driver.yaml`,
      header: `do-csi-plugin with the local backend on every node: each node's volumes are sparse files under
${LOCAL_DATA_DIR} on that node, attached as loop devices, served by that node's pod of one DaemonSet (driver
${local.driverName}, topology key ${local.driverName}/node). The scheduler places pods by the capacity each node
publishes (CSIStorageCapacity) and the classes bind when the pod is scheduled. Installs beside the DigitalOcean
driver; see docs/multi-node.md.`,
      sections: [
        clusterObjects(local, "local"),
        {
          comment:
            "One pod per node: the plugin for that node's pool with the provisioner and snapshotter in their node-deployment modes, the resizer, the registrar and the liveness probe.",
          objects: localNode(local),
        },
      ],
    },
    {
      path: `${localDir}/snapshot-controller.yaml`,
      header: SNAPSHOT_CONTROLLER_HEADER,
      sections: [{ objects: snapshotController(config) }],
    },
  ];
}

/** kustomization.yaml of a variant directory: everything but the CRDs, which must be established first. */
export function kustomization(): string {
  return [
    "# Generated by `npm run manifests`; apply crds.yaml first (see its header), then: kubectl apply -k <this directory>",
    "apiVersion: kustomize.config.k8s.io/v1beta1",
    "kind: Kustomization",
    "resources:",
    "  - driver.yaml",
    "  - snapshot-controller.yaml",
    "",
  ].join("\n");
}
