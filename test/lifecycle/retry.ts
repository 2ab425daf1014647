import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type CallOptions } from "@connectrpc/connect";

/**
 * How a Kubernetes component retries a CSI call: each attempt has its own
 * deadline (the sidecars' --timeout, the kubelet's csiTimeout); transient
 * failures are retried with exponential backoff, the same request each time.
 * The sidecars' defaults are seconds to minutes; tests scale them down.
 */
export interface RetryPolicy {
  /** Deadline of one attempt (or a function of the attempt number, from 1). */
  readonly attemptTimeoutMs: number | ((attempt: number) => number);
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  /** Give up after this long. */
  readonly maxElapsedMs: number;
  /**
   * Codes this caller takes as final although they usually are not (the
   * provisioner's ResourceExhausted for a claim it may reschedule elsewhere).
   */
  readonly finalCodes?: readonly Code[];
}

export const DEFAULT_RETRY: RetryPolicy = { attemptTimeoutMs: 30_000, initialBackoffMs: 20, maxBackoffMs: 1_000, maxElapsedMs: 120_000 };

/**
 * Codes the external-provisioner treats as "operation may still be in
 * progress" (not final): the same request is sent again.
 */
const TRANSIENT = new Set([Code.Canceled, Code.DeadlineExceeded, Code.Unavailable, Code.ResourceExhausted, Code.Aborted]);

/** Whether an error leaves the operation's outcome unknown, so the caller must retry it. */
export function isTransient(err: unknown): boolean {
  if (!(err instanceof ConnectError)) return true; // a transport failure: the request may or may not have arrived
  if (TRANSIENT.has(err.code)) return true;
  // A connection cut by a dying server surfaces as an HTTP/2 stream error, not a status from the driver.
  return (
    (err.code === Code.Internal || err.code === Code.Unknown) &&
    /stream|socket|ECONNRESET|ECONNREFUSED|ENOENT|GOAWAY|closed|protocol error/i.test(err.rawMessage)
  );
}

/** Counts of what happened across calls, for assertions about the retries themselves. */
export class RetryStats {
  attempts = 0;
  retries = 0;
  readonly byCode = new Map<string, number>();

  record(err: unknown): void {
    const key = err instanceof ConnectError ? Code[err.code] : "transport";
    this.byCode.set(key, (this.byCode.get(key) ?? 0) + 1);
  }

  count(code: Code): number {
    return this.byCode.get(Code[code]) ?? 0;
  }
}

export class GaveUp extends Error {}

/** Call `attempt` until it succeeds or fails finally; transient failures are retried with backoff. */
export async function withRetries<T>(
  what: string,
  attempt: (options: CallOptions) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
  stats?: RetryStats,
): Promise<T> {
  const started = Date.now();
  let backoff = policy.initialBackoffMs;
  for (let n = 1; ; n++) {
    const timeoutMs = typeof policy.attemptTimeoutMs === "function" ? policy.attemptTimeoutMs(n) : policy.attemptTimeoutMs;
    if (stats !== undefined) stats.attempts++;
    try {
      return await attempt({ timeoutMs });
    } catch (err) {
      stats?.record(err);
      if (!isTransient(err) || (err instanceof ConnectError && policy.finalCodes?.includes(err.code) === true)) throw err;
      if (Date.now() - started > policy.maxElapsedMs) {
        throw new GaveUp(`${what}: still failing after ${n} attempts in ${Date.now() - started} ms: ${(err as Error).message}`);
      }
      if (stats !== undefined) stats.retries++;
      // Jitter keeps many workers from retrying in lockstep.
      await sleep(backoff * (0.5 + Math.random()));
      backoff = Math.min(backoff * 2, policy.maxBackoffMs);
    }
  }
}
