import { createServer, type Server } from "node:http";
import type { Logger } from "../log/logger.js";
import type { CallObserver } from "../csi/call-handler.js";
import type { Readiness } from "../driver/readiness.js";

export interface DebugServer {
  readonly observer: CallObserver;
  readonly address: string;
  close(): Promise<void>;
}

/**
 * The HTTP debug server of --debug-addr: /health answers 200 when Probe would
 * say ready (as the Go driver's does), /ready lists every check, the
 * plugin's dependencies (the DigitalOcean API) included, as JSON (503 while one
 * is down), /metrics serves Prometheus metrics with
 * a histogram of CSI calls by method and code. prom-client is loaded only here,
 * so a plugin without --debug-addr never pays for it.
 */
export async function startDebugServer(addr: string, readiness: Readiness, log: Logger): Promise<DebugServer> {
  // prom-client is CommonJS: its module object is the default export, both
  // under Node's own loader and in the ESM bundle (which has no named exports
  // for a CommonJS chunk).
  const { default: prom } = await import("prom-client");
  const registry = new prom.Registry();
  prom.collectDefaultMetrics({ register: registry });
  const calls = new prom.Histogram({
    name: "csi_operations_seconds",
    help: "Duration of CSI calls served, by gRPC method and status code.",
    labelNames: ["method_name", "grpc_status_code"],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120],
    registers: [registry],
  });

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
      registry.metrics().then(
        (text) => {
          res.writeHead(200, { "content-type": registry.contentType });
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
    res.end("not found; try /health or /metrics\n");
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
  log.info({ address }, "debug server listening (/health, /metrics)");
  return {
    address,
    observer: { observe: (method, code, seconds) => calls.observe({ method_name: method, grpc_status_code: code }, seconds) },
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
