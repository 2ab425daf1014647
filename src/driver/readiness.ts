import { FailedPrecondition } from "../csi/errors.js";

/**
 * One thing the plugin needs in order to work. `check` resolves "ready" or
 * "initializing", or throws a status error (FAILED_PRECONDITION with the fix in
 * the message) when a dependency is missing or broken.
 */
export interface HealthCheck {
  readonly name: string;
  check(signal: AbortSignal): Promise<"ready" | "initializing">;
}

/** The plugin's health as Probe reports it: every check must pass; any one still starting makes it not ready. */
export class Readiness {
  readonly #checks: HealthCheck[] = [];

  add(check: HealthCheck): void {
    this.#checks.push(check);
  }

  async ready(signal: AbortSignal): Promise<boolean> {
    const results = await Promise.all(
      this.#checks.map(async (c) => {
        try {
          return await c.check(signal);
        } catch (err) {
          if (err instanceof Error && !("code" in err && typeof err.code === "number")) {
            throw FailedPrecondition("%s: %s", c.name, err.message);
          }
          throw err;
        }
      }),
    );
    return results.every((r) => r === "ready");
  }
}
