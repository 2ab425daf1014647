import { sleep } from "./sleep.js";

/**
 * The client-side request rate limit (`--do-api-rate-limit`, requests per
 * second, shared by every call of the process), plus a pause every call
 * honours after the API answered 429, so one rate-limited call does not let
 * the others run into the same wall. Waiting is bounded by each caller's signal.
 */
export class RateLimiter {
  readonly #intervalMs: number;
  #nextSlot = 0;
  #pausedUntil = 0;

  /** `qps` 0 means no client-side limit. */
  constructor(qps: number) {
    this.#intervalMs = qps > 0 ? 1000 / qps : 0;
  }

  /** Wait for this call's turn. */
  async acquire(signal: AbortSignal): Promise<void> {
    for (;;) {
      const now = Date.now();
      if (this.#pausedUntil > now) {
        await sleep(this.#pausedUntil - now, signal, "waiting for the DigitalOcean API rate limit to reset");
        continue;
      }
      if (this.#intervalMs === 0) return;
      const slot = Math.max(now, this.#nextSlot);
      this.#nextSlot = slot + this.#intervalMs;
      await sleep(slot - now, signal, "waiting for a turn under --do-api-rate-limit");
      return;
    }
  }

  /** Hold every call until `until` (epoch ms), after a 429. */
  pauseUntil(until: number): void {
    if (until > this.#pausedUntil) this.#pausedUntil = until;
  }
}
