import { DeadlineExceeded, Internal } from "../../csi/errors.js";
import type { DigitalOceanClient } from "./api/client.js";
import { abortedError } from "./api/errors.js";
import { jitter, sleep } from "./api/sleep.js";
import type { DoAction } from "./api/types.js";
import type { Logger } from "../../log/logger.js";
import { NO_METRICS, type ActionWaitOutcome, type DriverMetrics } from "../../util/metrics.js";
import { withProgress } from "../../util/progress.js";

export interface ActionPolling {
  /** Delay before the first status poll of an action still in progress. */
  readonly firstPollMs: number;
  /** Each later delay is the previous one times this factor... */
  readonly factor: number;
  /** ...up to this. */
  readonly maxPollMs: number;
  /** The waiter's own bound, whatever the caller's deadline (a fail-safe against actions that never finish). */
  readonly timeoutMs: number;
  /** Time between two "still waiting" log lines while an action is in progress (default: 10 s). */
  readonly progressIntervalMs?: number;
}

/** Where a wait is reported: progress lines while it lasts, and its duration and outcome as a metric. */
export interface ActionWatch {
  readonly log: Logger;
  readonly metrics?: DriverMetrics;
}

export const DEFAULT_ACTION_POLLING: ActionPolling = { firstPollMs: 150, factor: 1.6, maxPollMs: 2_000, timeoutMs: 120_000 };

/**
 * Wait until a volume action has completed. An action the POST already
 * answered as completed costs nothing; one in progress is polled soon
 * (~150 ms) and then less and less often. `errored` is a failure, and so is
 * the waiter's own timeout (DEADLINE_EXCEEDED, so the CO retries; the retry
 * finds the action's result). The caller's signal ends the wait at once.
 * With a watch, a long wait logs progress and every wait is measured.
 */
export async function waitForAction(
  client: DigitalOceanClient,
  volumeId: string,
  action: DoAction,
  signal: AbortSignal,
  polling: ActionPolling = DEFAULT_ACTION_POLLING,
  watch?: ActionWatch,
): Promise<DoAction> {
  if (action.status === "completed") return action;
  const metrics = watch?.metrics ?? NO_METRICS;
  const started = performance.now();
  const wait: { outcome: ActionWaitOutcome } = { outcome: "failed" };
  try {
    return await withProgress(
      `DigitalOcean action ${action.id} (${action.type})`,
      watch && { log: watch.log, intervalMs: polling.progressIntervalMs, fields: { volumeId, actionId: action.id } },
      () => poll(client, volumeId, action, signal, polling, wait),
    );
  } finally {
    metrics.actionWaited(action.type, wait.outcome, (performance.now() - started) / 1000);
  }
}

async function poll(
  client: DigitalOceanClient,
  volumeId: string,
  action: DoAction,
  signal: AbortSignal,
  polling: ActionPolling,
  wait: { outcome: ActionWaitOutcome },
): Promise<DoAction> {
  const own = AbortSignal.timeout(polling.timeoutMs);
  const bounded = AbortSignal.any([signal, own]);
  let current = action;
  let delay = polling.firstPollMs;
  const doing = () => `waiting for DigitalOcean action ${action.id} (${action.type}) on volume ${volumeId}`;
  try {
    for (;;) {
      if (current.status === "completed") {
        wait.outcome = "completed";
        return current;
      }
      if (current.status === "errored") {
        wait.outcome = "errored";
        throw Internal("DigitalOcean action %d (%s) on volume %s errored", current.id, current.type, volumeId);
      }
      await sleep(jitter(delay, 0.25), bounded, doing());
      delay = Math.min(polling.maxPollMs, delay * polling.factor);
      current = await client.getVolumeAction(volumeId, action.id, bounded);
    }
  } catch (err) {
    if (signal.aborted) {
      wait.outcome = "cancelled";
      throw abortedError(signal, doing());
    }
    if (own.aborted) {
      wait.outcome = "timeout";
      throw DeadlineExceeded(
        "DigitalOcean action %d (%s) on volume %s is still in progress after %d s; retry later",
        action.id,
        action.type,
        volumeId,
        Math.round(polling.timeoutMs / 1000),
      );
    }
    throw err;
  }
}
