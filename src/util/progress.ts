import type { Logger } from "../log/logger.js";

/** How often a long wait says it is still waiting, unless the caller chooses. */
export const DEFAULT_PROGRESS_INTERVAL_MS = 10_000;

export interface ProgressOptions {
  readonly log: Logger;
  /** Time between two "still waiting" lines. */
  readonly intervalMs?: number;
  /** Logged with every line (e.g. the volume id). */
  readonly fields?: Readonly<Record<string, unknown>>;
}

/**
 * Run `work`, logging an info line "still waiting" with the elapsed time and
 * `what` is awaited every interval until it settles, so a wait of minutes
 * (a DigitalOcean action, an image copy, mkfs) is visible in the log while it
 * lasts. Nothing is logged for work that ends within the first interval, and
 * nothing after it ends. Without options it only runs `work`.
 */
export async function withProgress<T>(what: string, options: ProgressOptions | undefined, work: () => Promise<T>): Promise<T> {
  if (options === undefined) return work();
  const { log, intervalMs = DEFAULT_PROGRESS_INTERVAL_MS, fields } = options;
  const started = Date.now();
  const timer = setInterval(() => {
    const elapsedSeconds = Math.round((Date.now() - started) / 100) / 10;
    log.info({ ...fields, waitingFor: what, elapsedSeconds }, "still waiting");
  }, intervalMs);
  // A wait in progress never keeps the process alive by itself.
  timer.unref();
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}
