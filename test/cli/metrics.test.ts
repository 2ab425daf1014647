import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startDebugServer, type DebugServer } from "../../src/cli/debug-server.js";
import { createPrometheusMetrics, type PrometheusMetrics } from "../../src/cli/prometheus.js";
import { CsiServer } from "../../src/csi/server.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { Readiness } from "../../src/driver/readiness.js";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { createPlugin, type Plugin } from "../../src/plugin.js";
import { controllerConfig, mountCapability, MiB } from "../driver/controller-harness.js";
import { parseCommandLine } from "../../src/cli/options.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const DRIVER = "metrics.csi.example.com";

/** One sample of the exposition text: `name{labels} value`, labels in any order. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(m[3]);
  }
  return undefined;
}

async function scrape(debug: DebugServer): Promise<string> {
  const res = await fetch(`http://${debug.address}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return res.text();
}

describe("/metrics", () => {
  let dir: string;
  let metrics: PrometheusMetrics;
  let debug: DebugServer | undefined;
  let plugin: Plugin | undefined;
  let server: CsiServer | undefined;
  let clients: CsiClients | undefined;
  let served: ServedRoutes | undefined;

  beforeEach(async () => {
    dir = await makeTestDir("metrics");
    metrics = await createPrometheusMetrics(DRIVER);
  });
  afterEach(async () => {
    clients?.close();
    await server?.shutdown();
    await served?.stop();
    await plugin?.close();
    await debug?.close();
    clients = server = served = plugin = debug = undefined;
    await removeTestDir(dir);
  });

  it("serves CSI calls by driver, method and code, and the local pool read at scrape time", async () => {
    const config = controllerConfig(dir, ["--driver-name", DRIVER]);
    plugin = await createPlugin(config, silentLogger, metrics.driver);
    const routes = plugin.routes.bind(plugin);
    server = await CsiServer.start({
      endpoint: config.endpoint,
      socketMode: 0o600,
      log: silentLogger,
      routes,
      observer: metrics.calls,
      shutdownTimeoutMs: 5_000,
    });
    debug = await startDebugServer("127.0.0.1:0", plugin.readiness, metrics, silentLogger);
    clients = connectCsi(`unix://${join(dir, "csi.sock")}`);

    const before = await scrape(debug);
    expect(sample(before, "do_csi_local_volumes", { data_dir: config.local.dataDir })).toBe(0);
    expect(sample(before, "do_csi_local_pool_capacity_bytes")).toBeGreaterThan(0);

    await clients.controller.createVolume({
      name: "metrics-vol",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(32 * MiB) },
    });
    await clients.controller.deleteVolume({ volumeId: "" }).catch(() => undefined);
    const text = await scrape(debug);
    const create = { driver_name: DRIVER, method_name: "/csi.v1.Controller/CreateVolume", grpc_status_code: "OK" };
    expect(sample(text, "csi_operations_seconds_count", create)).toBe(1);
    expect(
      sample(text, "csi_operations_seconds_count", {
        driver_name: DRIVER,
        method_name: "/csi.v1.Controller/DeleteVolume",
        grpc_status_code: "INVALID_ARGUMENT",
      }),
    ).toBe(1);
    expect(sample(text, "csi_operations_in_flight", { driver_name: DRIVER, method_name: "/csi.v1.Controller/CreateVolume" })).toBe(0);
    expect(sample(text, "do_csi_local_volumes")).toBe(1);
    expect(sample(text, "do_csi_local_snapshots")).toBe(0);
    expect(sample(text, "do_csi_local_pool_provisioned_bytes")).toBe(32 * MiB);
    expect(sample(text, "do_csi_local_pool_used_bytes")).toBeGreaterThanOrEqual(0);
    expect(sample(text, "do_csi_local_pool_available_bytes")).toBe(
      (sample(text, "do_csi_local_pool_capacity_bytes") ?? 0) - (sample(text, "do_csi_local_pool_provisioned_bytes") ?? 0),
    );
    expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
  });

  it("counts calls in flight while they run", async () => {
    let release!: () => void;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    served = await serveRoutes(
      dir,
      silentLogger,
      (r) =>
        r.service(Identity, {
          getPluginInfo: async () => {
            entered();
            await blocked;
            return { name: DRIVER, vendorVersion: "1" };
          },
        }),
      { observer: metrics.calls },
    );
    debug = await startDebugServer("127.0.0.1:0", new Readiness(), metrics, silentLogger);
    const call = served.clients.identity.getPluginInfo({});
    await inside;
    const labels = { driver_name: DRIVER, method_name: "/csi.v1.Identity/GetPluginInfo" };
    expect(sample(await scrape(debug), "csi_operations_in_flight", labels)).toBe(1);
    release();
    await call;
    expect(sample(await scrape(debug), "csi_operations_in_flight", labels)).toBe(0);
  });

  it("a DigitalOcean controller reports its API requests and action waits to the metrics it was created with", async () => {
    const sim = await DoSimulator.start({ localDropletId: 5150, token: "metrics-token" });
    try {
      sim.faults.actionDelayMs = 300;
      const { config } = parseCommandLine(
        ["--token", "metrics-token", "--url", sim.url, "--metadata-url", sim.metadataUrl, "--mode", "controller", "--driver-name", DRIVER],
        {},
        "test",
      );
      plugin = await createPlugin(config, silentLogger, metrics.driver);
      const routes = plugin.routes.bind(plugin);
      served = await serveRoutes(dir, silentLogger, routes, { observer: metrics.calls });
      debug = await startDebugServer("127.0.0.1:0", plugin.readiness, metrics, silentLogger);
      const { volume } = await served.clients.controller.createVolume({
        name: "metrics-do",
        volumeCapabilities: [mountCapability("ext4")],
        capacityRange: { requiredBytes: BigInt(1024 ** 3) },
      });
      await served.clients.controller.controllerPublishVolume({
        volumeId: volume?.volumeId ?? "",
        nodeId: "5150",
        volumeCapability: mountCapability("ext4"),
        volumeContext: volume?.volumeContext ?? {},
      });
      const text = await scrape(debug);
      expect(sample(text, "do_csi_api_requests_total", { route: "POST /v2/volumes", status: "201" })).toBe(1);
      expect(sample(text, "do_csi_api_requests_total", { route: "POST /v2/volumes/{id}/actions", status: "202" })).toBe(1);
      expect(sample(text, "do_csi_action_wait_seconds_count", { action_type: "attach_volume", outcome: "completed" })).toBe(1);
      expect(text).not.toContain(volume?.volumeId ?? "no id");
    } finally {
      await served?.stop();
      await plugin?.close();
      served = plugin = undefined;
      await sim.stop();
    }
  });

  it("serves DigitalOcean API requests by route and status, retries, 429 waits and action waits", async () => {
    debug = await startDebugServer("127.0.0.1:0", new Readiness(), metrics, silentLogger);
    const d = metrics.driver;
    d.apiRequest("GET /v2/volumes/{id}", "200", 0.05);
    d.apiRequest("GET /v2/volumes/{id}", "200", 0.07);
    d.apiRequest("POST /v2/volumes/{id}/actions", "429", 0.01);
    d.apiRateLimited("POST /v2/volumes/{id}/actions", 1.5);
    d.apiRetry("GET /v2/account", "server_error");
    d.actionWaited("attach_volume", "completed", 3);
    const text = await scrape(debug);
    expect(sample(text, "do_csi_api_requests_total", { route: "GET /v2/volumes/{id}", status: "200" })).toBe(2);
    expect(sample(text, "do_csi_api_request_duration_seconds_count", { route: "GET /v2/volumes/{id}" })).toBe(2);
    expect(sample(text, "do_csi_api_requests_total", { route: "POST /v2/volumes/{id}/actions", status: "429" })).toBe(1);
    expect(sample(text, "do_csi_api_rate_limited_total", { route: "POST /v2/volumes/{id}/actions" })).toBe(1);
    expect(sample(text, "do_csi_api_rate_limit_wait_seconds_total", { route: "POST /v2/volumes/{id}/actions" })).toBe(1.5);
    expect(sample(text, "do_csi_api_retries_total", { route: "GET /v2/account", reason: "server_error" })).toBe(1);
    expect(sample(text, "do_csi_action_wait_seconds_bucket", { action_type: "attach_volume", outcome: "completed", le: "2" })).toBe(0);
    expect(sample(text, "do_csi_action_wait_seconds_bucket", { action_type: "attach_volume", outcome: "completed", le: "5" })).toBe(1);
    // No local backend in this process: its gauges have no sample.
    expect(sample(text, "do_csi_local_volumes")).toBeUndefined();
  });

  it("leaves a pool without a sample when it cannot be read, and still answers", async () => {
    metrics.driver.addPoolSource(async () => {
      throw new Error("data dir gone");
    });
    metrics.driver.addPoolSource(async () => ({
      dataDir: "/pool-b",
      capacityBytes: 100,
      provisionedBytes: 50,
      usedBytes: 10,
      availableBytes: 50,
      volumes: 2,
      snapshots: 1,
    }));
    debug = await startDebugServer("127.0.0.1:0", new Readiness(), metrics, silentLogger);
    const text = await scrape(debug);
    expect(text).toContain("# TYPE do_csi_local_pool_used_bytes gauge");
    expect(text.match(/^do_csi_local_pool_used_bytes\{/gm)).toHaveLength(1);
    expect(sample(text, "do_csi_local_pool_used_bytes", { data_dir: "/pool-b" })).toBe(10);
    expect(sample(text, "do_csi_local_volumes", { data_dir: "/pool-b" })).toBe(2);
  });
});
