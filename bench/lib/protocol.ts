/** Messages between the orchestrator and its worker processes (see worker.ts). */

export type UnaryMethod = "probe" | "nodeGetCapabilities";

export type UnaryRequest =
  | { readonly kind: "connect"; readonly endpoint: string }
  | { readonly kind: "run"; readonly method: UnaryMethod; readonly calls: number; readonly concurrency: number }
  | { readonly kind: "close" };

/** Client-side view of one load run (latencies in microseconds). */
export interface UnaryResult {
  readonly calls: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly wallMs: number;
  readonly p50Us: number;
  readonly p90Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
  readonly meanUs: number;
}

export interface SimulatorOptions {
  readonly region: string;
  readonly dropletId: number;
  readonly extraDroplets: number;
  readonly rateLimit?: { readonly limit: number; readonly windowMs: number };
}

export type SimRequest =
  | { readonly kind: "counts" }
  | { readonly kind: "reset" }
  | { readonly kind: "seed"; readonly count: number; readonly prefix: string }
  | { readonly kind: "volumes" };

export interface SimCounts {
  /** Requests per route key (metadata service included, see apiRequests). */
  readonly routes: Record<string, number>;
  /** API requests (metadata service excluded). */
  readonly apiRequests: number;
  /** Answers per HTTP status. */
  readonly statuses: Record<string, number>;
  /** Volumes the simulated account holds. */
  readonly volumes: number;
  readonly attachedVolumes: number;
}

export interface SimReady {
  readonly url: string;
  readonly pid: number;
}
