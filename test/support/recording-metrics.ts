import type { ActionWaitOutcome, ApiRetryReason, DriverMetrics, PoolSource } from "../../src/util/metrics.js";

/** A DriverMetrics that keeps every event, for asserting what the layers report. */
export interface RecordingMetrics extends DriverMetrics {
  readonly requests: { route: string; status: string; seconds: number }[];
  readonly retries: { route: string; reason: ApiRetryReason }[];
  readonly rateLimited: { route: string; waitSeconds: number }[];
  readonly actionWaits: { actionType: string; outcome: ActionWaitOutcome; seconds: number }[];
  readonly pools: PoolSource[];
}

export function recordingMetrics(): RecordingMetrics {
  const requests: RecordingMetrics["requests"] = [];
  const retries: RecordingMetrics["retries"] = [];
  const rateLimited: RecordingMetrics["rateLimited"] = [];
  const actionWaits: RecordingMetrics["actionWaits"] = [];
  const pools: PoolSource[] = [];
  return {
    requests,
    retries,
    rateLimited,
    actionWaits,
    pools,
    apiRequest: (route, status, seconds) => requests.push({ route, status, seconds }),
    apiRetry: (route, reason) => retries.push({ route, reason }),
    apiRateLimited: (route, waitSeconds) => rateLimited.push({ route, waitSeconds }),
    actionWaited: (actionType, outcome, seconds) => actionWaits.push({ actionType, outcome, seconds }),
    addPoolSource: (source) => pools.push(source),
  };
}
