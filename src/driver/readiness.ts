import type { CheckKind, HealthCheck } from "../backend/health-check.js";
import { CsiError, FailedPrecondition } from "../errors.js";

export interface CheckReport {
  readonly name: string;
  readonly kind: CheckKind;
  readonly state: "ready" | "initializing" | "failed";
  /** What is wrong and how to fix it, when the check failed. */
  readonly message?: string;
}

export interface HealthReport {
  /** Every check, of the process and of its dependencies, is ready. */
  readonly ready: boolean;
  readonly checks: readonly CheckReport[];
}

/** How long a passed check is trusted before it runs again. */
const READY_TTL_MS = 10_000;

/** Longest failure message a report carries (a dependency's answer is not ours to trust). */
const MAX_REPORT_MESSAGE = 300;

/**
 * The plugin's health. `ready` is what Probe answers: every process check must
 * pass; any one still starting makes it not ready. Orchestrators probe every
 * few seconds from several places (liveness probes, registrars): a pass is
 * trusted for a few seconds, and concurrent probes share one evaluation, so
 * probing stays cheap. Failures are never cached: a fix shows at once.
 * `report` lists every check, dependencies included, with its state.
 */
export class Readiness {
  readonly #checks: HealthCheck[] = [];
  #passedAt = 0;
  #pending: Promise<boolean> | undefined;

  add(check: HealthCheck): void {
    this.#checks.push(check);
    this.#passedAt = 0;
  }

  /** A pass within the last few seconds: ready without evaluating anything (nor needing a signal to). */
  get recentlyPassed(): boolean {
    return this.#passedAt !== 0 && Date.now() - this.#passedAt < READY_TTL_MS;
  }

  async ready(signal: AbortSignal): Promise<boolean> {
    if (this.recentlyPassed) return true;
    this.#pending ??= this.#evaluate(signal).finally(() => (this.#pending = undefined));
    return this.#pending;
  }

  /** Every check's state, evaluated now (each check keeps its own cache, if it has one). */
  async report(signal: AbortSignal): Promise<HealthReport> {
    const checks = await Promise.all(
      this.#checks.map(async (c): Promise<CheckReport> => {
        const kind = kindOf(c);
        try {
          return { name: c.name, kind, state: await c.check(signal) };
        } catch (err) {
          const message = err instanceof CsiError ? err.rawMessage : err instanceof Error ? err.message : String(err);
          return { name: c.name, kind, state: "failed", message: message.slice(0, MAX_REPORT_MESSAGE) };
        }
      }),
    );
    return { ready: checks.every((c) => c.state === "ready"), checks };
  }

  async #evaluate(signal: AbortSignal): Promise<boolean> {
    const results = await Promise.all(
      this.#checks
        .filter((c) => kindOf(c) === "process")
        .map(async (c) => {
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

function kindOf(check: HealthCheck): CheckKind {
  return check.kind ?? "process";
}
