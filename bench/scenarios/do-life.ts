/**
 * Rows 4 and 5: 200 DigitalOcean volume lives (create -> publish -> unpublish
 * -> delete) at concurrency 16 through the built driver in controller mode,
 * against the project's simulator (own process, instant actions), counting the
 * API requests with the simulator's per-route counters.
 */
import { performance } from "node:perf_hooks";
import type { CsiClients } from "../../src/csi/client.js";
import { startDriver, type RunningDriver } from "../lib/driver.js";
import { cpuMicros } from "../lib/proc.js";
import type { SimCounts, SimReady, SimRequest, SimulatorOptions } from "../lib/protocol.js";
import { WorkerProcess } from "../lib/worker.js";
import { mountCapability } from "./local-life.js";

export const REGION = "nyc3";
export const DROPLET = 100001;
const GiB = 1024 ** 3;

export type Simulator = WorkerProcess<SimRequest, SimCounts | null>;

export async function startSimulator(options: SimulatorOptions): Promise<{ sim: Simulator; url: string }> {
  const { worker, ready } = await WorkerProcess.start<SimRequest, SimCounts | null, SimReady>("bench/workers/do-sim.ts", [
    JSON.stringify(options),
  ]);
  return { sim: worker, url: ready.url };
}

export async function simCounts(sim: Simulator): Promise<SimCounts> {
  const counts = await sim.request({ kind: "counts" });
  if (counts === null) throw new Error("the simulator sent no counts");
  return counts;
}

export function controllerArgs(url: string, extra: readonly string[] = []): string[] {
  return ["--token", "x", "--region", REGION, "--url", url, ...extra];
}

export interface LifeRun {
  readonly volumes: number;
  readonly concurrency: number;
  readonly wallMs: number;
  readonly failed: number;
  /** RPC errors by message (first few), e.g. a 429 surfaced as UNAVAILABLE. */
  readonly errors: Record<string, number>;
  readonly apiRequests: number;
  readonly requestsPerLife: number;
  readonly routes: Record<string, number>;
  /** Answers per HTTP status the simulator sent (429s included). */
  readonly statuses: Record<string, number>;
  readonly tooManyRequests: number;
  /** Volumes left in the simulated account after the run (0 expected). */
  readonly leftVolumes: number;
  readonly lifeMs: { readonly p50: number; readonly p99: number; readonly max: number };
  /** CPU (user + system) each process used during the run, in ms: where the wall time goes on 2 shared cores. */
  readonly cpuMs: { readonly driver: number; readonly simulator: number; readonly client: number };
}

export interface DoLifeOptions {
  readonly volumes: number;
  readonly concurrency: number;
  readonly runs: number;
  readonly log: (line: string) => void;
}

/** One volume's life; lane `lane` attaches to its own droplet (a droplet takes 7 volumes, and one action at a time). */
async function life(c: CsiClients, name: string, nodeId: string): Promise<void> {
  const capability = mountCapability();
  const { volume } = await c.controller.createVolume({
    name,
    capacityRange: { requiredBytes: BigInt(GiB), limitBytes: 0n },
    volumeCapabilities: [capability],
  });
  const volumeId = volume?.volumeId ?? "";
  if (volumeId === "") throw new Error("CreateVolume returned no volume");
  await c.controller.controllerPublishVolume({ volumeId, nodeId, volumeCapability: capability, volumeContext: volume?.volumeContext });
  await c.controller.controllerUnpublishVolume({ volumeId, nodeId });
  await c.controller.deleteVolume({ volumeId });
}

export async function runLives(driver: RunningDriver, sim: Simulator, prefix: string, options: DoLifeOptions): Promise<LifeRun> {
  await sim.request({ kind: "reset" });
  let next = 0;
  let failed = 0;
  const errors: Record<string, number> = {};
  const durations: number[] = [];
  const cpu0 = { driver: cpuMicros(driver.pid), simulator: cpuMicros(sim.pid), client: cpuMicros(process.pid) };
  const started = performance.now();
  const lane = async (lane: number) => {
    const nodeId = String(DROPLET + lane);
    for (;;) {
      const i = next++;
      if (i >= options.volumes) return;
      const t0 = performance.now();
      try {
        await life(driver.clients, `${prefix}-${i}`, nodeId);
      } catch (err) {
        failed++;
        const message = (err instanceof Error ? err.message : String(err)).slice(0, 200);
        errors[message] = (errors[message] ?? 0) + 1;
      }
      durations.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, i) => lane(i)));
  const wallMs = performance.now() - started;
  const cpuMs = {
    driver: (cpuMicros(driver.pid) - cpu0.driver) / 1000,
    simulator: (cpuMicros(sim.pid) - cpu0.simulator) / 1000,
    client: (cpuMicros(process.pid) - cpu0.client) / 1000,
  };
  const counts = await simCounts(sim);
  durations.sort((a, b) => a - b);
  const at = (q: number) => durations[Math.min(durations.length - 1, Math.floor(q * durations.length))] ?? NaN;
  return {
    volumes: options.volumes,
    concurrency: options.concurrency,
    wallMs,
    failed,
    errors,
    apiRequests: counts.apiRequests,
    requestsPerLife: counts.apiRequests / options.volumes,
    routes: counts.routes,
    statuses: counts.statuses,
    tooManyRequests: counts.statuses["429"] ?? 0,
    leftVolumes: counts.volumes,
    lifeMs: { p50: at(0.5), p99: at(0.99), max: durations.at(-1) ?? NaN },
    cpuMs,
  };
}

export interface DoLifeResult {
  readonly runs: readonly LifeRun[];
  readonly driverArgs: readonly string[];
  readonly simulator: SimulatorOptions;
}

/** Start a simulator and a controller driver, warm up with one lane's worth of lives, then `runs` runs. */
export async function measureDoLives(
  name: string,
  simulator: SimulatorOptions,
  extraArgs: readonly string[],
  options: DoLifeOptions,
): Promise<DoLifeResult> {
  const { sim, url } = await startSimulator(simulator);
  let driver: RunningDriver | undefined;
  try {
    const args = controllerArgs(url, extraArgs);
    driver = await startDriver({ name, args });
    await runLives(driver, sim, `warmup-${name}`, { ...options, volumes: options.concurrency });
    const runs: LifeRun[] = [];
    for (let r = 0; r < options.runs; r++) {
      const run = await runLives(driver, sim, `pvc-${name}-${r}`, options);
      runs.push(run);
      options.log(
        `  run ${r + 1}: ${run.wallMs.toFixed(0)} ms, ${run.requestsPerLife.toFixed(2)} requests/life, ${run.failed} failed, ${run.tooManyRequests} x 429; cpu ms driver ${run.cpuMs.driver.toFixed(0)}, simulator ${run.cpuMs.simulator.toFixed(0)}, client ${run.cpuMs.client.toFixed(0)}` +
          (run.failed > 0 ? `; errors: ${JSON.stringify(run.errors)}` : ""),
      );
    }
    return { runs, driverArgs: args.map((a) => (a === url ? "http://127.0.0.1:<port>/" : a)), simulator };
  } finally {
    await driver?.stop();
    await sim.stop();
  }
}
