import type { HealthCheck } from "../../driver/readiness.js";
import type { Logger } from "../../log/logger.js";
import type { DigitalOceanClient } from "./api/client.js";
import { outcomeOfFailure, type ApiOutcome } from "./api/outcome.js";

const FRESH_MS = 60_000;
const FAILURE_TTL_MS = 10_000;
const CHECK_TIMEOUT_MS = 10_000;

type Failure = Extract<ApiOutcome, { ok: false }>;

/**
 * The DigitalOcean API's health, a dependency of the controller: reported by
 * the debug server's /ready and logged when it changes, never part of Probe
 * (an API outage must not restart the controller).
 *
 * Every request the controller makes tells it how the API is doing: a warning
 * is logged when the API becomes unreachable or refuses the token (with the
 * reason), an info line when it answers again — one line per change, however
 * many calls fail. `check` costs no request while the API answered any call in
 * the last minute; otherwise one GET /v2/account, whose result is reused (a
 * minute on success, ten seconds on failure), so asking never adds API traffic
 * of its own.
 */
export class ApiHealth implements HealthCheck {
  readonly name = "DigitalOcean API";
  readonly kind = "dependency";
  readonly #client: DigitalOceanClient;
  readonly #log: Logger;
  #answeredAt = 0;
  #failure: (Failure & { at: number; since: number }) | undefined;
  #pending: Promise<void> | undefined;

  constructor(client: DigitalOceanClient, log: Logger) {
    this.#client = client;
    this.#log = log;
    client.onOutcome((outcome) => this.#record(outcome));
  }

  async check(signal: AbortSignal): Promise<"ready"> {
    const now = Date.now();
    if (this.#failure === undefined && now - this.#answeredAt < FRESH_MS) return "ready";
    if (this.#failure !== undefined && now - this.#failure.at < FAILURE_TTL_MS) throw new Error(describe(this.#failure));
    this.#pending ??= this.#ask(signal).finally(() => {
      this.#pending = undefined;
    });
    await this.#pending;
    if (this.#failure !== undefined) throw new Error(describe(this.#failure));
    return "ready";
  }

  async #ask(signal: AbortSignal): Promise<void> {
    const own = AbortSignal.timeout(CHECK_TIMEOUT_MS);
    try {
      // Its outcome reaches #record through the client, like any request's.
      await this.#client.getAccount(AbortSignal.any([signal, own]));
    } catch (err) {
      // A request that outlives the check's own bound says the API does not answer; the caller giving up says nothing.
      if (own.aborted && !signal.aborted) {
        this.#record({ ok: false, problem: "unreachable", detail: `GET /v2/account: no answer within ${CHECK_TIMEOUT_MS / 1000} s` });
      } else if (outcomeOfFailure(err) === undefined) {
        throw err;
      }
    }
  }

  #record(outcome: ApiOutcome): void {
    const now = Date.now();
    if (outcome.ok) {
      this.#answeredAt = now;
      if (this.#failure !== undefined) {
        this.#log.info({ api: "digitalocean", downForMs: now - this.#failure.since }, "DigitalOcean API answers again");
        this.#failure = undefined;
      }
      return;
    }
    const previous = this.#failure;
    this.#failure = { ...outcome, at: now, since: previous?.since ?? now };
    if (previous?.problem !== outcome.problem) {
      this.#log.warn({ api: "digitalocean", problem: outcome.problem, reason: outcome.detail }, describe(outcome));
    }
  }
}

function describe(failure: Failure): string {
  return failure.problem === "unauthorised"
    ? `cannot use the DigitalOcean API: it refuses the token (${failure.detail}); check --token: it may be wrong, expired or revoked`
    : `cannot use the DigitalOcean API: it is unreachable (${failure.detail}); controller calls fail until it answers`;
}
