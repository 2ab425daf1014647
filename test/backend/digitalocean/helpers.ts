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

export { expectCode } from "../../support/expect-code.js";
