import { createServer, type Server } from "node:http";
import type { Logger } from "../log/logger.js";
import type { Readiness } from "../driver/readiness.js";
import type { PrometheusMetrics } from "./prometheus.js";

export interface DebugServer {
  readonly address: string;
  close(): Promise<void>;
}

/**
 * The HTTP debug server of --debug-addr: /health answers 200 when Probe would
 * say ready (as the Go driver's does), /ready lists every check as JSON, the
 * plugin's dependencies (the DigitalOcean API) included (503 while one is
 * down), and /metrics serves the driver's metrics (see prometheus.ts and
 * docs/metrics.md).
 */
export async function startDebugServer(addr: string, readiness: Readiness, metrics: PrometheusMetrics, log: Logger): Promise<DebugServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/health" || path === "/healthz") {
      const signal = AbortSignal.timeout(10_000);
      readiness.ready(signal).then(
        (ready) => {
          res.writeHead(ready ? 200 : 503, { "content-type": "text/plain" });
          res.end(ready ? "ok\n" : "initializing\n");
        },
        (err: unknown) => {
          res.writeHead(503, { "content-type": "text/plain" });
          res.end(`${err instanceof Error ? err.message : String(err)}\n`);
        },
      );
      return;
    }
    if (path === "/ready") {
      // report() never rejects: a failed check is a state in the report.
      void readiness.report(AbortSignal.timeout(10_000)).then((report) => {
        res.writeHead(report.ready ? 200 : 503, { "content-type": "application/json" });
        res.end(`${JSON.stringify(report)}\n`);
      });
      return;
    }
    if (path === "/metrics") {
      metrics.render().then(
        (text) => {
          res.writeHead(200, { "content-type": metrics.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found; try /health, /ready or /metrics\n");
  });

  const { host, port } = splitHostPort(addr);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address();
  const address = typeof bound === "object" && bound ? `${bound.address}:${bound.port}` : addr;
  log.info({ address }, "debug server listening (/health, /ready, /metrics)");
  return {
    address,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Go-style listen addresses: ":8080", "127.0.0.1:8080", "[::1]:8080". */
export function splitHostPort(addr: string): { host: string | undefined; port: number } {
  const m = /^(?:\[([^\]]*)\]|([^:]*)):(\d+)$/.exec(addr);
  if (!m) throw new Error(`invalid debug address ${JSON.stringify(addr)}: use host:port or :port`);
  const host = m[1] ?? m[2] ?? "";
  return { host: host === "" ? undefined : host, port: Number(m[3]) };
}
