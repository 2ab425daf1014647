/**
 * The project's DigitalOcean API simulator (test/fixtures/do-simulator) in its
 * own process, driven over IPC: its per-route counters, a status histogram
 * (429s seen), a reset between phases, and seeding volumes without requests.
 * Usage: do-sim.ts '<SimulatorOptions JSON>'
 */
import { DoSimulator } from "../../test/fixtures/do-simulator/simulator.js";
import type { SimCounts, SimReady, SimRequest, SimulatorOptions } from "../lib/protocol.js";
import { serveRequests } from "../lib/worker.js";

const options = JSON.parse(process.argv[2] ?? "{}") as SimulatorOptions;
const sim = await DoSimulator.start({
  region: options.region,
  localDropletId: options.dropletId,
  ...(options.rateLimit ? { rateLimit: options.rateLimit } : {}),
});
for (let i = 1; i <= options.extraDroplets; i++) sim.addDroplet(options.dropletId + i);

function counts(): SimCounts {
  const statuses: Record<string, number> = {};
  for (const r of sim.requests) statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
  const volumes = sim.volumes();
  return {
    routes: sim.counts(),
    apiRequests: sim.apiRequests(),
    statuses,
    volumes: volumes.length,
    attachedVolumes: volumes.filter((v) => v.dropletIds.length > 0).length,
  };
}

const ready: SimReady = { url: sim.url, pid: process.pid };
serveRequests<SimRequest, SimCounts | null>(
  ready,
  async (req) => {
    switch (req.kind) {
      case "counts":
        return counts();
      case "reset":
        sim.resetCounters();
        return null;
      case "seed":
        for (let i = 0; i < req.count; i++) sim.seedVolume({ name: `${req.prefix}-${i}`, region: options.region });
        return counts();
      case "volumes":
        return counts();
    }
  },
  () => sim.stop(),
);
