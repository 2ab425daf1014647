/**
 * What the driver's layers report for metrics, without knowing how it is
 * exported. The debug server (--debug-addr) implements it with prom-client;
 * without it every layer gets NO_METRICS, whose methods do nothing, so a
 * plugin without metrics pays one empty call per event and loads nothing.
 */
export interface DriverMetrics {
  /** One answer of the DigitalOcean API, or "error" for an attempt that got none. `route` is a template such as "GET /v2/volumes/{id}". */
  apiRequest(route: string, status: string, seconds: number): void;
  /** An attempt about to be repeated after a 5xx answer ("server_error") or a failed connection ("connection_error"). */
  apiRetry(route: string, reason: ApiRetryReason): void;
  /** A 429 answer, and how long it made the client wait before the next request. */
  apiRateLimited(route: string, waitSeconds: number): void;
  /** A wait for a DigitalOcean action that was still in progress, by its end. */
  actionWaited(actionType: string, outcome: ActionWaitOutcome, seconds: number): void;
  /** A source of gauges read at scrape time (the local backend's pool). */
  addPoolSource(source: PoolSource): void;
}

export type ApiRetryReason = "server_error" | "connection_error";
export type ActionWaitOutcome = "completed" | "errored" | "timeout" | "cancelled" | "failed";

/** The local pool's figures, computed when metrics are scraped. */
export interface PoolReading {
  /** Which pool: the local backend's data directory. */
  readonly dataDir: string;
  /** Bytes the data dir's filesystem can hold for the pool: its free space plus what the images occupy. */
  readonly capacityBytes: number;
  /** Bytes promised: the full size of every volume plus what snapshots occupy. */
  readonly provisionedBytes: number;
  /** Bytes the images occupy on disk. */
  readonly usedBytes: number;
  /** Bytes that may still be promised to new or growing volumes (GetCapacity's answer). */
  readonly availableBytes: number;
  readonly volumes: number;
  readonly snapshots: number;
}

export type PoolSource = () => Promise<PoolReading>;

export const NO_METRICS: DriverMetrics = {
  apiRequest() {},
  apiRetry() {},
  apiRateLimited() {},
  actionWaited() {},
  addPoolSource() {},
};
