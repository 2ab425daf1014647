/**
 * The manifests against the running driver: the built dist/do-csi-plugin.js
 * is started with the plugin container's own arguments (only the socket, the
 * data directory and the DigitalOcean URLs pointed at this test's temporary
 * directory and the API simulator on 127.0.0.1), then asked what it serves.
 * A sidecar must be deployed if and only if the capability it drives is
 * advertised, and the driver must call itself what the manifests call it.
 */
import { createServer } from "node:net";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ControllerServiceCapability_RPC_Type as Rpc,
  NodeServiceCapability_RPC_Type as NodeRpc,
  PluginCapability_Service_Type as Service,
  PluginCapability_VolumeExpansion_Type as VolumeExpansion,
} from "../../src/gen/csi/v1/csi_pb.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { PLUGIN_CONTAINER, SIDECARS, TOKEN_ENV } from "../../deploy/generate/config.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { startDriver, type DriverProcess } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  containers,
  expandedArgs,
  flagValues,
  isObject,
  loadManifests,
  workloads,
  type JsonObject,
  type LoadedDoc,
  type Workload,
} from "./manifests.js";

const NODE_NAME = "deploy-test-node";
const TOKEN = "deploy-test-token";

interface Running {
  readonly driver: DriverProcess;
  readonly clients: CsiClients;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
});

function pluginOf(w: Workload): JsonObject {
  const c = containers(w.pod).find((x) => x.name === PLUGIN_CONTAINER);
  if (!c) throw new Error(`${w.name} has no plugin container`);
  return c;
}

function modeOf(w: Workload): string {
  return flagValues(expandedArgs(pluginOf(w))).get("mode") ?? "";
}

function hasSidecar(w: Workload, name: keyof typeof SIDECARS): boolean {
  return containers(w.pod).some((c) => c.name === SIDECARS[name].container);
}

/** The plugin container's args as the kubelet would pass them, with the host-specific values replaced for this test. */
function argsForTest(w: Workload, replace: Readonly<Record<string, string>>, add: readonly string[] = []): string[] {
  const args = expandedArgs(pluginOf(w), { KUBE_NODE_NAME: NODE_NAME });
  return [
    ...args
      .filter((a) => !a.startsWith("--endpoint="))
      .map((a) => {
        const flag = /^--([^=]+)=/.exec(a)?.[1];
        return flag !== undefined && flag in replace ? `--${flag}=${replace[flag] ?? ""}` : a;
      }),
    ...add,
  ];
}

async function run(dir: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Running> {
  const driver = await startDriver(join(dir, "csi.sock"), args, { env: { ...env, DO_CSI_LOG_LEVEL: "warn" } });
  const clients = connectCsi(driver.endpoint);
  cleanups.push(async () => {
    clients.close();
    await driver.stop();
  });
  return { driver, clients };
}

async function controllerRpcs(clients: CsiClients): Promise<Set<Rpc>> {
  const res = await clients.controller.controllerGetCapabilities({});
  return new Set(res.capabilities.flatMap((c) => (c.type.case === "rpc" ? [c.type.value.type] : [])));
}

async function pluginServices(clients: CsiClients): Promise<Set<Service>> {
  const res = await clients.identity.getPluginCapabilities({});
  return new Set(res.capabilities.flatMap((c) => (c.type.case === "service" ? [c.type.value.type] : [])));
}

/**
 * The sidecars a controller workload deploys must be exactly those its advertised capabilities call for. The resizer
 * is needed for controller expansion, and also for node-only expansion: it then updates the PV itself and the kubelet
 * calls NodeExpandVolume.
 */
function expectSidecarsMatch(w: Workload, rpcs: ReadonlySet<Rpc>, csiDriver: JsonObject, nodeExpansion = false): void {
  expect({
    provisioner: hasSidecar(w, "provisioner"),
    attacher: hasSidecar(w, "attacher"),
    resizer: hasSidecar(w, "resizer"),
    snapshotter: hasSidecar(w, "snapshotter"),
    attachRequired: isObject(csiDriver.spec) ? csiDriver.spec.attachRequired : undefined,
  }).toEqual({
    provisioner: rpcs.has(Rpc.CREATE_DELETE_VOLUME),
    attacher: rpcs.has(Rpc.PUBLISH_UNPUBLISH_VOLUME),
    resizer: rpcs.has(Rpc.EXPAND_VOLUME) || nodeExpansion,
    snapshotter: rpcs.has(Rpc.CREATE_DELETE_SNAPSHOT),
    attachRequired: rpcs.has(Rpc.PUBLISH_UNPUBLISH_VOLUME),
  });
}

function csiDriverOf(docs: readonly LoadedDoc[]): JsonObject {
  const found = docs.find((d) => d.object.kind === "CSIDriver");
  if (!found) throw new Error("no CSIDriver");
  return found.object;
}

/** A port free on 127.0.0.1 now, for the manifest's --debug-addr (which binds every interface in a pod). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== "object" || address === null) throw new Error("no port");
  return address.port;
}

/** The manifest's metrics switch works: --debug-addr serves the calls made so far, labelled with the driver's name. */
async function expectMetrics(port: number, driverName: string, method: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text).toContain(`csi_operations_seconds_count{driver_name="${driverName}",method_name="${method}",grpc_status_code="OK"} 1`);
  return text;
}

function nameOf(object: JsonObject): string {
  return isObject(object.metadata) ? String(object.metadata.name) : "";
}

describe("local manifests against the running driver", () => {
  let docs: LoadedDoc[];
  beforeAll(async () => {
    docs = await loadManifests("deploy/kubernetes/local");
  });

  it("serves controller and node with the manifest's flags; sidecars match the advertised capabilities; topology is <driver>/node", async () => {
    const [w] = workloads(docs).filter((x) => containers(x.pod).some((c) => c.name === PLUGIN_CONTAINER));
    expect(w).toBeDefined();
    const workload = w as Workload;
    // One instance per node serving both services for its own pool.
    expect(flagValues(expandedArgs(pluginOf(workload))).get("node-deployment")).toBe("true");
    const dir = await makeTestDir("deploy-local");
    cleanups.push(() => removeTestDir(dir));
    const port = await freePort();
    const { clients } = await run(dir, argsForTest(workload, { "data-dir": join(dir, "data"), "debug-addr": `127.0.0.1:${port}` }));

    const csiDriver = csiDriverOf(docs);
    expect((await clients.identity.getPluginInfo({})).name).toBe(nameOf(csiDriver));
    expect(await pluginServices(clients)).toContain(Service.CONTROLLER_SERVICE);
    const rpcs = await controllerRpcs(clients);
    expect(rpcs.size).toBeGreaterThan(0);
    // Nothing attaches across nodes and the controller grows nothing: the node grows the volume, online.
    expect(rpcs.has(Rpc.PUBLISH_UNPUBLISH_VOLUME)).toBe(false);
    expect(rpcs.has(Rpc.EXPAND_VOLUME)).toBe(false);
    expect(rpcs.has(Rpc.GET_CAPACITY)).toBe(true);
    const nodeCaps = await clients.node.nodeGetCapabilities({});
    const nodeExpansion = nodeCaps.capabilities.some((c) => c.type.case === "rpc" && c.type.value.type === NodeRpc.EXPAND_VOLUME);
    expect(nodeExpansion).toBe(true);
    const plugin = await clients.identity.getPluginCapabilities({});
    expect(
      plugin.capabilities.some((c) => c.type.case === "volumeExpansion" && c.type.value.type === VolumeExpansion.ONLINE),
      "plugin VolumeExpansion ONLINE",
    ).toBe(true);
    expectSidecarsMatch(workload, rpcs, csiDriver, nodeExpansion);
    // The capacity the provisioner publishes for this node, and none for another.
    const topology = { segments: { [`${nameOf(csiDriver)}/node`]: NODE_NAME } };
    expect((await clients.controller.getCapacity({ accessibleTopology: topology })).availableCapacity).toBeGreaterThan(0n);
    const elsewhere = { segments: { [`${nameOf(csiDriver)}/node`]: "another-node" } };
    expect((await clients.controller.getCapacity({ accessibleTopology: elsewhere })).availableCapacity).toBe(0n);
    // The one pod also registers the node service with the kubelet.
    expect(hasSidecar(workload, "registrar")).toBe(true);

    const info = await clients.node.nodeGetInfo({});
    expect(info.nodeId).toBe(NODE_NAME);
    expect(info.accessibleTopology?.segments).toEqual({ [`${nameOf(csiDriver)}/node`]: NODE_NAME });
    const metrics = await expectMetrics(port, nameOf(csiDriver), "/csi.v1.Node/NodeGetInfo");
    expect(metrics).toMatch(/^do_csi_local_volumes\{data_dir="[^"]+"\} 0$/m);
  });
});

describe("DigitalOcean manifests against the running driver (API simulator on 127.0.0.1)", () => {
  let docs: LoadedDoc[];
  let sim: DoSimulator;
  beforeAll(async () => {
    docs = await loadManifests("deploy/kubernetes/digitalocean");
  });

  async function simulator(): Promise<DoSimulator> {
    sim = await DoSimulator.start({ token: TOKEN });
    cleanups.push(() => sim.stop());
    return sim;
  }

  function pluginWorkload(mode: string): Workload {
    const found = workloads(docs).find((x) => containers(x.pod).some((c) => c.name === PLUGIN_CONTAINER) && modeOf(x) === mode);
    if (!found) throw new Error(`no ${mode} workload`);
    return found;
  }

  it("controller: the token from the Secret's env var makes it a controller; sidecars match the advertised capabilities", async () => {
    const s = await simulator();
    const dir = await makeTestDir("deploy-do-controller");
    cleanups.push(() => removeTestDir(dir));
    const w = pluginWorkload("controller");
    const port = await freePort();
    const { clients } = await run(
      dir,
      argsForTest(w, { url: s.url, "debug-addr": `127.0.0.1:${port}` }, [`--metadata-url=${s.metadataUrl}`]),
      {
        [TOKEN_ENV]: TOKEN,
      },
    );

    const csiDriver = csiDriverOf(docs);
    expect((await clients.identity.getPluginInfo({})).name).toBe(nameOf(csiDriver));
    expect(await pluginServices(clients)).toContain(Service.CONTROLLER_SERVICE);
    expectSidecarsMatch(w, await controllerRpcs(clients), csiDriver);
    expect(hasSidecar(w, "registrar")).toBe(false);
    await expectMetrics(port, nameOf(csiDriver), "/csi.v1.Controller/ControllerGetCapabilities");
  });

  it("node: serves no controller RPCs, topology key `region`, the droplet as node id, 7 volumes per node", async () => {
    const s = await simulator();
    const dir = await makeTestDir("deploy-do-node");
    cleanups.push(() => removeTestDir(dir));
    const w = pluginWorkload("node");
    const port = await freePort();
    const { clients } = await run(
      dir,
      argsForTest(w, { url: s.url, "debug-addr": `127.0.0.1:${port}` }, [`--metadata-url=${s.metadataUrl}`, `--by-id-dir=${dir}`]),
    );

    expect((await clients.identity.getPluginInfo({})).name).toBe(nameOf(csiDriverOf(docs)));
    // Every instance reports the plugin's capabilities (CSI spec, as the Go driver does); the node pod serves no controller RPCs.
    expect(await pluginServices(clients)).toContain(Service.CONTROLLER_SERVICE);
    expect((await clients.controller.controllerGetCapabilities({}).catch((e: unknown) => e)) instanceof Error).toBe(true);
    const info = await clients.node.nodeGetInfo({});
    expect(info.nodeId).toBe(String(s.localDropletId));
    expect(info.accessibleTopology?.segments).toEqual({ region: s.region });
    expect(Number(info.maxVolumesPerNode)).toBe(7);
    // The node pod runs none of the controller sidecars.
    for (const name of ["provisioner", "attacher", "resizer", "snapshotter"] as const) expect(hasSidecar(w, name), name).toBe(false);
    expect(hasSidecar(w, "registrar")).toBe(true);
    await expectMetrics(port, nameOf(csiDriverOf(docs)), "/csi.v1.Node/NodeGetInfo");
  });
});
