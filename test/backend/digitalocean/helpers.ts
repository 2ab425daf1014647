import type { Code } from "@connectrpc/connect";
import { expect } from "vitest";
import { codeName, codeOf } from "../../../src/csi/errors.js";
import { silentLogger, type Logger } from "../../../src/log/logger.js";
import { DigitalOceanClient } from "../../../src/backend/digitalocean/api/client.js";
import { Transport, type TransportOptions } from "../../../src/backend/digitalocean/api/transport.js";
import { DigitalOceanController } from "../../../src/backend/digitalocean/controller.js";
import type { ActionPolling } from "../../../src/backend/digitalocean/action-waiter.js";
import type { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import type { DriverMetrics } from "../../../src/util/metrics.js";

export const GIB = 1024 ** 3;
export const TOKEN = "test-token-c4n4ry-9f8e7d";

/** A client of the simulator with quick back-offs (tests wait less). */
export function simClient(sim: DoSimulator, overrides: Partial<TransportOptions> = {}): DigitalOceanClient {
  return new DigitalOceanClient(
    new Transport({
      baseUrl: sim.url,
      token: TOKEN,
      userAgent: "do-csi-plugin/test (dobs.csi.digitalocean.com)",
      rateLimit: 0,
      log: silentLogger,
      backoffBaseMs: 10,
      backoffMaxMs: 50,
      ...overrides,
    }),
  );
}

export const FAST_POLLING: ActionPolling = { firstPollMs: 20, factor: 1.5, maxPollMs: 100, timeoutMs: 10_000 };

export function simController(
  sim: DoSimulator,
  options: {
    tag?: string;
    pageSize?: number;
    polling?: ActionPolling;
    log?: Logger;
    transport?: Partial<TransportOptions>;
    metrics?: DriverMetrics;
  } = {},
): DigitalOceanController {
  return new DigitalOceanController({
    client: simClient(sim, options.transport),
    region: sim.region,
    driverName: "dobs.csi.digitalocean.com",
    tag: options.tag ?? "",
    defaultPageSize: options.pageSize ?? 0,
    log: options.log ?? silentLogger,
    polling: options.polling,
    metrics: options.metrics,
  });
}

/** A signal that aborts after `ms` (a call's deadline). */
export function deadline(ms = 30_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

/** Assert that a promise rejects with a status error of this code (and, optionally, a message matching). */
export async function expectCode(promise: Promise<unknown>, code: Code, message?: RegExp): Promise<Error> {
  let caught: unknown;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${codeName(code)}, but the call succeeded`).toBeDefined();
  expect(codeName(codeOf(caught)), caught instanceof Error ? caught.message : String(caught)).toBe(codeName(code));
  if (message) expect((caught as Error).message).toMatch(message);
  return caught as Error;
}
