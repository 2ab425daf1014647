import { CsiError, FailedPrecondition } from "../csi/errors.js";

/**
 * One thing the plugin needs in order to work. `check` resolves "ready" or
 * "initializing", or throws a status error (FAILED_PRECONDITION with the fix in
 * the message) when a dependency is missing or broken.
 */
export interface HealthCheck {
  readonly name: string;
  check(signal: AbortSignal): Promise<"ready" | "initializing">;
}

/** How long a passed check is trusted before it runs again. */
const READY_TTL_MS = 10_000;

/**
 * The plugin's health as Probe reports it: every check must pass; any one
 * still starting makes it not ready. Orchestrators probe every few seconds
 * from several places (liveness probes, registrars): a check that passed is
 * trusted for a few seconds, and concurrent probes share one evaluation, so
 * probing stays cheap. Failures are never cached: a fix shows at once.
 */
export class Readiness {
  readonly #checks: HealthCheck[] = [];
  #passedAt = 0;
  #pending: Promise<boolean> | undefined;

  add(check: HealthCheck): void {
    this.#checks.push(check);
    this.#passedAt = 0;
  }

  async ready(signal: AbortSignal): Promise<boolean> {
    if (this.#passedAt !== 0 && Date.now() - this.#passedAt < READY_TTL_MS) return true;
    this.#pending ??= this.#evaluate(signal).finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  async #evaluate(signal: AbortSignal): Promise<boolean> {
    const results = await Promise.all(
      this.#checks.map(async (c) => {
        try {
          return await c.check(signal);
        } catch (err) {
          if (err instanceof CsiError) throw err;
          throw FailedPrecondition("%s: %s", c.name, err);
        }
      }),
    );
    const ready = results.every((r) => r === "ready");
    this.#passedAt = ready ? Date.now() : 0;
    return ready;
  }
}
