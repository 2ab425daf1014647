import type { CallObserver } from "../csi/call-handler.js";
import type { DriverMetrics, PoolReading, PoolSource } from "../util/metrics.js";

/** The driver's metrics in Prometheus form (docs/metrics.md lists every one). */
export interface PrometheusMetrics {
  /** Fed by the gRPC middleware: calls by method and code, calls in flight. */
  readonly calls: CallObserver;
  /** Fed by the backends: DigitalOcean API requests, retries, 429s and action waits; the local pool, read at scrape time. */
  readonly driver: DriverMetrics;
  readonly contentType: string;
  /** The exposition text of every metric. */
  render(): Promise<string>;
}

const CALL_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120];
const API_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const ACTION_BUCKETS = [0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];

/**
 * Create the registry. prom-client is loaded here, and this is called only for
 * --debug-addr, so a plugin without it never loads prom-client.
 */
export async function createPrometheusMetrics(driverName: string): Promise<PrometheusMetrics> {
  // prom-client is CommonJS: its module object is the default export, both
  // under Node's own loader and in the ESM bundle (which has no named exports
  // for a CommonJS chunk).
  const { default: prom } = await import("prom-client");
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const calls = new prom.Histogram({
    name: "csi_operations_seconds",
    help: "Duration of CSI calls served, by gRPC method and status code.",
    labelNames: ["driver_name", "method_name", "grpc_status_code"],
    buckets: CALL_BUCKETS,
    registers,
  });
  const inFlight = new prom.Gauge({
    name: "csi_operations_in_flight",
    help: "CSI calls being served now, by gRPC method.",
    labelNames: ["driver_name", "method_name"],
    registers,
  });

  const apiRequests = new prom.Counter({
    name: "do_csi_api_requests_total",
    help: "DigitalOcean API requests, by route template and HTTP status ('error' when no answer came, 'cancelled' when the caller gave up).",
    labelNames: ["route", "status"],
    registers,
  });
  const apiSeconds = new prom.Histogram({
    name: "do_csi_api_request_duration_seconds",
    help: "Duration of DigitalOcean API requests (one attempt each), by route template.",
    labelNames: ["route"],
    buckets: API_BUCKETS,
    registers,
  });
  const apiRetries = new prom.Counter({
    name: "do_csi_api_retries_total",
    help: "DigitalOcean API requests repeated after a 5xx answer (server_error) or a failed connection (connection_error).",
    labelNames: ["route", "reason"],
    registers,
  });
  const rateLimited = new prom.Counter({
    name: "do_csi_api_rate_limited_total",
    help: "DigitalOcean API answers 429 (rate limit exceeded), by route template.",
    labelNames: ["route"],
    registers,
  });
  const rateLimitWait = new prom.Counter({
    name: "do_csi_api_rate_limit_wait_seconds_total",
    help: "Seconds the client paused its requests because of 429 answers, by the route that got the 429.",
    labelNames: ["route"],
    registers,
  });
  const actionWait = new prom.Histogram({
    name: "do_csi_action_wait_seconds",
    help: "Time spent waiting for DigitalOcean volume actions (attach, detach, resize) still in progress, by action type and outcome.",
    labelNames: ["action_type", "outcome"],
    buckets: ACTION_BUCKETS,
    registers,
  });

  // Each pool is measured once per scrape, whichever of its gauges asks first.
  const pools: PoolSource[] = [];
  let reading: Promise<PoolReading[]> | undefined;
  const readPools = () =>
    (reading ??= Promise.allSettled(pools.map((source) => source())).then((results) =>
      results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : [])),
    ));
  const poolGauge = (name: string, help: string, pick: (r: PoolReading) => number) =>
    new prom.Gauge({
      name,
      help,
      labelNames: ["data_dir"],
      registers,
      async collect() {
        // A pool that cannot be read now (its data dir is gone) has no sample rather than a stale one.
        this.reset();
        for (const r of await readPools()) this.set({ data_dir: r.dataDir }, pick(r));
      },
    });
  poolGauge(
    "do_csi_local_pool_capacity_bytes",
    "Local backend: bytes the data dir's filesystem can hold for the pool (its free space plus what the images occupy).",
    (r) => r.capacityBytes,
  );
  poolGauge(
    "do_csi_local_pool_provisioned_bytes",
    "Local backend: bytes promised (every volume's full size plus what snapshots occupy).",
    (r) => r.provisionedBytes,
  );
  poolGauge("do_csi_local_pool_used_bytes", "Local backend: bytes the volume and snapshot images occupy on disk.", (r) => r.usedBytes);
  poolGauge(
    "do_csi_local_pool_available_bytes",
    "Local backend: bytes that may still be promised to new or growing volumes (GetCapacity's answer, with --overcommit-ratio).",
    (r) => r.availableBytes,
  );
  poolGauge("do_csi_local_volumes", "Local backend: volumes that exist.", (r) => r.volumes);
  poolGauge("do_csi_local_snapshots", "Local backend: snapshots that exist.", (r) => r.snapshots);

  return {
    calls: {
      started: (method) => inFlight.inc({ driver_name: driverName, method_name: method }),
      finished(method, code, seconds) {
        inFlight.dec({ driver_name: driverName, method_name: method });
        calls.observe({ driver_name: driverName, method_name: method, grpc_status_code: code }, seconds);
      },
    },
    driver: {
      apiRequest(route, status, seconds) {
        apiRequests.inc({ route, status });
        apiSeconds.observe({ route }, seconds);
      },
      apiRetry: (route, reason) => apiRetries.inc({ route, reason }),
      apiRateLimited(route, waitSeconds) {
        rateLimited.inc({ route });
        rateLimitWait.inc({ route }, waitSeconds);
      },
      actionWaited: (actionType, outcome, seconds) => actionWait.observe({ action_type: actionType, outcome }, seconds),
      addPoolSource: (source) => pools.push(source),
    },
    contentType: registry.contentType,
    async render() {
      reading = undefined;
      try {
        return await registry.metrics();
      } finally {
        reading = undefined;
      }
    },
  };
}
