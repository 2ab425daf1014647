/**
 * The load client of the unary-overhead row, in its own process: it connects
 * to the driver once, then runs `calls` calls of one method with `concurrency`
 * callers in flight, timing each call on the client side (hrtime).
 */
import { performance } from "node:perf_hooks";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { quantileSorted } from "../lib/stats.js";
import type { UnaryMethod, UnaryRequest, UnaryResult } from "../lib/protocol.js";
import { serveRequests } from "../lib/worker.js";

let clients: CsiClients | undefined;

function caller(c: CsiClients, method: UnaryMethod): () => Promise<unknown> {
  switch (method) {
    case "probe":
      return () => c.identity.probe({});
    case "nodeGetCapabilities":
      return () => c.node.nodeGetCapabilities({});
  }
}

async function run(method: UnaryMethod, calls: number, concurrency: number): Promise<UnaryResult> {
  if (!clients) throw new Error("not connected");
  const call = caller(clients, method);
  const latencies = new Float64Array(calls);
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= calls) return;
      const t0 = performance.now();
      try {
        await call();
      } catch (err) {
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
      }
      latencies[i] = (performance.now() - t0) * 1000;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  const wallMs = performance.now() - started;
  latencies.sort();
  let sum = 0;
  for (const v of latencies) sum += v;
  return {
    calls,
    errors,
    ...(firstError !== undefined ? { firstError } : {}),
    wallMs,
    p50Us: quantileSorted(latencies, 0.5),
    p90Us: quantileSorted(latencies, 0.9),
    p99Us: quantileSorted(latencies, 0.99),
    maxUs: latencies[latencies.length - 1] ?? NaN,
    meanUs: sum / calls,
  };
}

serveRequests<UnaryRequest, UnaryResult | null>(
  { pid: process.pid },
  async (req) => {
    switch (req.kind) {
      case "connect":
        clients?.close();
        clients = connectCsi(req.endpoint);
        await clients.identity.probe({});
        return null;
      case "run":
        return run(req.method, req.calls, req.concurrency);
      case "close":
        clients?.close();
        clients = undefined;
        return null;
    }
  },
  async () => clients?.close(),
);
