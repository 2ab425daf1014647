/**
 * Rows 1-3: the node plugin's RSS, its start-up time and its per-call overhead
 * on unary RPCs. The node plugin is the built driver in node-only mode with
 * the local backend, started as the issue starts it.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { benchRoot, track } from "../lib/cleanup.js";
import { startDriver, type RunningDriver } from "../lib/driver.js";
import { cpuMicros, mib, rssSample, type RssSample } from "../lib/proc.js";
import type { UnaryMethod, UnaryRequest, UnaryResult } from "../lib/protocol.js";
import { WorkerProcess } from "../lib/worker.js";

export interface FootprintOptions {
  /** Driver processes measured for RSS (the first also runs every unary run). */
  readonly reps: number;
  /** Start-up measurements. */
  readonly starts: number;
  /** Calls per unary run. */
  readonly calls: number;
  readonly log: (line: string) => void;
}

/**
 * The first run of every rep is the one after which "RSS after 20k calls" is
 * read; the others run in the first rep only (a 20k-call run takes tens of
 * seconds on this kind of machine).
 */
export const UNARY_RUNS: readonly { method: UnaryMethod; concurrency: number }[] = [
  { method: "nodeGetCapabilities", concurrency: 64 },
  { method: "probe", concurrency: 64 },
  { method: "probe", concurrency: 1 },
  { method: "nodeGetCapabilities", concurrency: 1 },
];

/** Each run is made of this many equal segments, the driver's CPU read between them: the spread of the per-call figures. */
export const SEGMENTS = 4;
export const WARMUP_CALLS = 1000;

export interface UnarySegment extends UnaryResult {
  /** Driver CPU (utime + stime from /proc/<pid>/stat) over the segment, per call, in microseconds. */
  readonly driverCpuUsPerCall: number;
  /** The load client's CPU per call, for context (it shares the 2 cores). */
  readonly clientCpuUsPerCall: number;
}

export interface UnaryRun {
  readonly method: UnaryMethod;
  readonly concurrency: number;
  readonly calls: number;
  readonly wallMs: number;
  /** Driver CPU over the whole run, per call (µs). */
  readonly driverCpuUsPerCall: number;
  readonly clientCpuUsPerCall: number;
  readonly segments: readonly UnarySegment[];
}

export interface FootprintRep {
  readonly readyMs: number;
  /** 2 s after ready. */
  readonly idle: RssSample;
  /** A bare `node -e` idle process started beside the driver, read at the same moment. */
  readonly bareNode: RssSample;
  /** Driver CPU during those 2 idle seconds (µs). */
  readonly idleCpuUs: number;
  /** 2 s after the first 20k-call run (which follows the connect Probe and a 2k-call warm-up). */
  readonly afterFirstRun: RssSample;
  readonly callsBeforeFirstSample: number;
  /** 2 s after every run of the rep. */
  readonly afterAllRuns: RssSample;
  readonly totalCalls: number;
  readonly runs: readonly UnaryRun[];
}

export interface StartupResult {
  readonly readyMs: readonly number[];
  readonly socketMs: readonly number[];
  /** `node -e 0` spawn -> exit, measured right after each start: Node's own floor on this machine at that moment. */
  readonly bareNodeExitMs: readonly number[];
}

export function nodePluginArgs(dir: string): string[] {
  return ["--backend", "local", "--mode", "node", "--data-dir", join(dir, "data"), "--node-id", "n1"];
}

function spawnBareNode(): { pid: number; stop: () => void } {
  const child = track(spawn(process.execPath, ["-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" }));
  if (child.pid === undefined) throw new Error("could not spawn node");
  return { pid: child.pid, stop: () => child.kill("SIGKILL") };
}

async function bareNodeExitMs(): Promise<number> {
  const t0 = performance.now();
  const child = track(spawn(process.execPath, ["-e", "0"], { stdio: "ignore" }));
  await new Promise((res) => child.once("exit", res));
  return performance.now() - t0;
}

export async function measureStartup(options: FootprintOptions): Promise<StartupResult> {
  const readyMs: number[] = [];
  const socketMs: number[] = [];
  const bare: number[] = [];
  for (let i = 0; i < options.starts; i++) {
    const name = `startup-${i}`;
    const driver = await startDriver({ name, args: nodePluginArgs(join(benchRoot(), name)) });
    readyMs.push(driver.readyMs);
    socketMs.push(driver.socketMs);
    const code = await driver.stop();
    if (code !== 0) throw new Error(`the node plugin exited with ${code} after SIGTERM; see ${driver.logFile}`);
    bare.push(await bareNodeExitMs());
    await sleep(100);
  }
  options.log(
    `  spawn -> first Probe: ${readyMs.map((s) => s.toFixed(0)).join(", ")} ms; bare node -e 0 spawn -> exit: ${bare.map((b) => b.toFixed(0)).join(", ")} ms`,
  );
  return { readyMs, socketMs, bareNodeExitMs: bare };
}

type LoadClient = WorkerProcess<UnaryRequest, UnaryResult | null>;

export async function startLoadClient(endpoint: string): Promise<LoadClient> {
  const { worker } = await WorkerProcess.start<UnaryRequest, UnaryResult | null, unknown>("bench/workers/unary-client.ts");
  await worker.request({ kind: "connect", endpoint });
  return worker;
}

/** WARMUP_CALLS calls of each method (not measured); returns the calls made, with the connect Probe. */
export async function warmUp(client: LoadClient, methods: readonly UnaryMethod[] = ["probe", "nodeGetCapabilities"]): Promise<number> {
  for (const method of methods) await client.request({ kind: "run", method, calls: WARMUP_CALLS, concurrency: 8 });
  return 1 + methods.length * WARMUP_CALLS;
}

export async function unaryRun(
  driverPid: number,
  client: LoadClient,
  method: UnaryMethod,
  calls: number,
  concurrency: number,
): Promise<UnaryRun> {
  const segments: UnarySegment[] = [];
  const per = Math.ceil(calls / SEGMENTS);
  const d0 = cpuMicros(driverPid);
  const c0 = cpuMicros(client.pid);
  let done = 0;
  let wallMs = 0;
  while (done < calls) {
    const n = Math.min(per, calls - done);
    const sd = cpuMicros(driverPid);
    const sc = cpuMicros(client.pid);
    const result = await client.request({ kind: "run", method, calls: n, concurrency });
    if (result === null) throw new Error("no result from the load client");
    if (result.errors > 0) throw new Error(`${method}: ${result.errors} of ${n} calls failed, e.g. ${result.firstError ?? "?"}`);
    segments.push({ ...result, driverCpuUsPerCall: (cpuMicros(driverPid) - sd) / n, clientCpuUsPerCall: (cpuMicros(client.pid) - sc) / n });
    done += n;
    wallMs += result.wallMs;
  }
  return {
    method,
    concurrency,
    calls,
    wallMs,
    driverCpuUsPerCall: (cpuMicros(driverPid) - d0) / calls,
    clientCpuUsPerCall: (cpuMicros(client.pid) - c0) / calls,
    segments,
  };
}

async function footprintRep(options: FootprintOptions, rep: number): Promise<FootprintRep> {
  const name = `footprint-${rep}`;
  const bare = spawnBareNode();
  let driver: RunningDriver | undefined;
  let client: LoadClient | undefined;
  try {
    driver = await startDriver({ name, args: nodePluginArgs(join(benchRoot(), name)) });
    // The load client starts after the idle sample, so its start-up does not disturb the idle figures.
    const cpuIdle0 = cpuMicros(driver.pid);
    await sleep(2000);
    const idleCpuUs = cpuMicros(driver.pid) - cpuIdle0;
    const idle = rssSample(driver.pid);
    const bareNode = rssSample(bare.pid);
    bare.stop();

    client = await startLoadClient(driver.endpoint);
    let calls = await warmUp(client);
    const runs: UnaryRun[] = [];
    let afterFirstRun: RssSample | undefined;
    let callsBeforeFirstSample = 0;
    for (const { method, concurrency } of rep === 0 ? UNARY_RUNS : UNARY_RUNS.slice(0, 1)) {
      const run = await unaryRun(driver.pid, client, method, options.calls, concurrency);
      runs.push(run);
      calls += options.calls;
      options.log(
        `  rep ${rep + 1} ${method} c=${concurrency}: driver ${run.driverCpuUsPerCall.toFixed(0)} µs CPU/call (segments ${run.segments.map((s) => s.driverCpuUsPerCall.toFixed(0)).join("/")}), ` +
          `client p50 ${run.segments.map((s) => s.p50Us.toFixed(0)).join("/")} µs, p99 ${run.segments.map((s) => s.p99Us.toFixed(0)).join("/")} µs, ${(run.wallMs / 1000).toFixed(1)} s`,
      );
      if (afterFirstRun === undefined) {
        await sleep(2000);
        afterFirstRun = rssSample(driver.pid);
        callsBeforeFirstSample = calls;
      }
    }
    if (afterFirstRun === undefined) throw new Error("no unary run");
    if (runs.length > 1) await sleep(2000);
    const afterAllRuns = runs.length > 1 ? rssSample(driver.pid) : afterFirstRun;
    options.log(
      `  rep ${rep + 1}: RSS idle ${mib(idle.rss).toFixed(1)} MiB (bare node ${mib(bareNode.rss).toFixed(1)} MiB), after ${callsBeforeFirstSample} calls ${mib(afterFirstRun.rss).toFixed(1)} MiB` +
        (runs.length > 1 ? `, after ${calls} calls ${mib(afterAllRuns.rss).toFixed(1)} MiB` : ""),
    );
    return {
      readyMs: driver.readyMs,
      idle,
      bareNode,
      idleCpuUs,
      afterFirstRun,
      callsBeforeFirstSample,
      afterAllRuns,
      totalCalls: calls,
      runs,
    };
  } finally {
    bare.stop();
    await client?.stop();
    await driver?.stop();
  }
}

export async function measureFootprint(options: FootprintOptions): Promise<FootprintRep[]> {
  const reps: FootprintRep[] = [];
  for (let rep = 0; rep < options.reps; rep++) reps.push(await footprintRep(options, rep));
  return reps;
}
