/**
 * How the plugin tells whether it can work: backends and the node host each
 * contribute checks, which the driver's Readiness (src/driver/readiness.ts)
 * combines for Probe and the debug server.
 */

/**
 * What a failing check means:
 * - "process": this process cannot work without it (host tools on a node, the
 *   local data directory). Probe fails while it fails, so a liveness probe
 *   restarts a plugin that is broken.
 * - "dependency": a remote service the plugin calls (the DigitalOcean API).
 *   Probe never consults it: a restart cannot fix an outage elsewhere, and the
 *   Go driver's Probe does not look at the API either. Its state shows in
 *   `report` (the debug server's /ready) and in the check's own log lines.
 */
export type CheckKind = "process" | "dependency";

/**
 * One thing the plugin needs in order to work. `check` resolves "ready" or
 * "initializing", or throws a status error (FAILED_PRECONDITION with the fix in
 * the message) when it is missing or broken. `kind` defaults to "process".
 */
export interface HealthCheck {
  readonly name: string;
  readonly kind?: CheckKind;
  check(signal: AbortSignal): Promise<"ready" | "initializing">;
}
