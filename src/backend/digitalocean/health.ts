import type { HealthCheck } from "../../driver/readiness.js";
import type { DigitalOceanClient } from "./api/client.js";

const FRESH_MS = 60_000;
const FAILURE_TTL_MS = 10_000;
const CHECK_TIMEOUT_MS = 10_000;

/**
 * Probe's view of the DigitalOcean API. It costs no request while the API
 * answered any call in the last minute; otherwise one GET /v2/account, whose
 * result is reused (a minute on success, ten seconds on failure), so a CO
 * probing every few seconds never adds API traffic of its own.
 */
export class ApiHealth implements HealthCheck {
  readonly name = "DigitalOcean API";
  #okUntil = 0;
  #failure: { message: string; until: number } | undefined;
  #pending: Promise<void> | undefined;

  constructor(readonly client: DigitalOceanClient) {}

  async check(signal: AbortSignal): Promise<"ready"> {
    const now = Date.now();
    if (now - this.client.transport.lastAnsweredAt < FRESH_MS || now < this.#okUntil) return "ready";
    if (this.#failure !== undefined && now < this.#failure.until) throw new Error(this.#failure.message);
    this.#pending ??= this.#run(signal).finally(() => {
      this.#pending = undefined;
    });
    await this.#pending;
    return "ready";
  }

  async #run(signal: AbortSignal): Promise<void> {
    try {
      await this.client.getAccount(AbortSignal.any([signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]));
      this.#okUntil = Date.now() + FRESH_MS;
      this.#failure = undefined;
    } catch (err) {
      const detail =
        err instanceof Error ? ("rawMessage" in err && typeof err.rawMessage === "string" ? err.rawMessage : err.message) : String(err);
      const message = `cannot use the DigitalOcean API: ${detail}`;
      this.#failure = { message, until: Date.now() + FAILURE_TTL_MS };
      throw new Error(message);
    }
  }
}
