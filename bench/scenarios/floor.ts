/**
 * Issue 13: the node plugin against the runtime's floor, measured in the same
 * run. The floor is bench/workers/bare-grpc-server.mjs, a gRPC server on bare
 * node:http2 that answers every call with an empty message; it runs on the
 * same Node binary, listens on the same kind of unix socket and is driven by
 * the same load client as the driver. Every figure is taken on each Node the
 * driver ships on (the developer's and the image's) and, where the image sets
 * V8 flags, for the driver with and without them (the lever's before/after).
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { benchRoot } from "../lib/cleanup.js";
import { driverEntryPath, startDriver, type RunningDriver } from "../lib/driver.js";
import { buildSnapshot, imageEntrypointNodeFlags, imageEnvironment } from "../../test/support/driver-process.js";
import { cpuMicros, rssSample, type RssSample } from "../lib/proc.js";
import { nodePluginArgs, startLoadClient, unaryRun, type UnaryRun } from "./footprint.js";

export const BARE_SERVER = "bench/workers/bare-grpc-server.mjs";
export const IMAGE_NODE_BINARY = "node_modules/node-image/bin/node";
/** The Probe load of the RSS and CPU rows: first this many, then up to FLOOR_TOTAL_CALLS, at this concurrency. */
export const FLOOR_FIRST_CALLS = 20_000;
export const FLOOR_TOTAL_CALLS = 100_000;
export const FLOOR_CONCURRENCY = 64;

/** The issue's targets, relative to the baseline measured in the same run on the same Node. */
export const FLOOR_TARGETS = {
  startupPlusMs: 50,
  idlePlusMiB: 3,
  loadedPlusIdleMiB: 10,
  cpuTimes: 2,
} as const;

export interface FloorRuntime {
  readonly name: string;
  readonly node: string;
  readonly version: string;
}

export interface FloorSubject {
  /** "baseline", "driver" (as the image runs it), or a lever's other side: NO_SNAPSHOT_SUBJECT (NO_FLAGS_SUBJECT, FORMER_FLAGS_SUBJECT in earlier runs). */
  readonly name: string;
  readonly entry?: string;
  /** Started from the start-up snapshot built for the runtime's Node, as the image starts the plugin (src/cli/snapshot.ts). */
  readonly snapshot?: boolean;
  /** Node's own arguments before the program (the image's entrypoint's flags). */
  readonly nodeArgs?: readonly string[];
  readonly args: readonly string[];
  /** NODE_OPTIONS the process gets (always set, so the bench's own never leak in). */
  readonly nodeOptions: string;
  /** Other environment variables the process gets: the image's ENV (GLIBC_TUNABLES) for the driver. */
  readonly environment?: Readonly<Record<string, string>>;
}

export interface FloorMeasure {
  readonly subject: string;
  readonly nodeOptions: string;
  /** Node's own arguments before the program (runs since 2026-12-06). */
  readonly nodeArgs?: string;
  /** The environment variables set for it besides NODE_OPTIONS, as NAME=VALUE (runs since 2026-12-06T03). */
  readonly environment?: string;
  /** Spawn -> first Probe OK, every start (the first is the measured process). */
  readonly readyMs: readonly number[];
  /** 2 s after ready, the measured process. */
  readonly idle: RssSample;
  /**
   * 2 s after ready, every start (the measured process first): one process's
   * idle RSS moves by a few MiB from start to start, so the rows take the median.
   */
  readonly idleSamples?: readonly RssSample[];
  readonly idleCpuUs: number;
  /** 2 s after FLOOR_FIRST_CALLS Probes (plus the connect Probe). */
  readonly afterFirst: RssSample;
  /** 2 s after FLOOR_TOTAL_CALLS Probes. */
  readonly afterTotal: RssSample;
  readonly firstRun: UnaryRun;
  readonly restRun: UnaryRun;
  /**
   * The load figures of every process put under load (the one above first),
   * started in turn with the other subjects': a process's CPU per Probe and
   * RSS after load move from process to process, so the rows take the median.
   */
  readonly loads?: readonly FloorLoad[];
}

/** One process under the Probe load. */
export interface FloorLoad {
  readonly afterFirst: RssSample;
  readonly afterTotal: RssSample;
  readonly firstCpuUsPerCall: number;
  readonly restCpuUsPerCall: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

export interface FloorRuntimeResult {
  readonly runtime: FloorRuntime;
  readonly measures: readonly FloorMeasure[];
}

export interface FloorOptions {
  readonly starts: number;
  /** Processes per subject put under the Probe load, interleaved across subjects. */
  readonly loadReps: number;
  readonly log: (line: string) => void;
}

export function floorRuntimes(): FloorRuntime[] {
  const runtimes: FloorRuntime[] = [{ name: "developer's Node", node: process.execPath, version: process.versions.node }];
  try {
    const pkg: unknown = JSON.parse(readFileSync("node_modules/node-image/package.json", "utf8"));
    const version = typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string" ? pkg.version : "?";
    runtimes.push({ name: "image's Node", node: resolve(IMAGE_NODE_BINARY), version });
  } catch {
    // Without node_modules/node-image (npm ci not run) only the developer's Node is measured.
  }
  return runtimes;
}

/** The heap flags the image set in NODE_OPTIONS until 2026-12-05; measured beside the driver as shipped while the image sets none. */
export const FORMER_HEAP_FLAGS = "--max-semi-space-size=2 --max-old-space-size=64";

export function floorSubjects(dir: string): FloorSubject[] {
  const { NODE_OPTIONS: shipped = "", ...environment } = imageEnvironment();
  const subjects: FloorSubject[] = [
    { name: "baseline", entry: BARE_SERVER, args: [], nodeOptions: "" },
    { name: "driver", args: nodePluginArgs(dir), nodeOptions: shipped, environment, snapshot: true, nodeArgs: imageEntrypointNodeFlags() },
    // The start-up snapshot's other side: the bundle as `node dist/do-csi-plugin.js` runs it (in the image's environment too).
    { name: NO_SNAPSHOT_SUBJECT, args: nodePluginArgs(dir), nodeOptions: shipped, environment },
  ];
  return subjects;
}

export const NO_SNAPSHOT_SUBJECT = "driver, without the snapshot";

export const NO_FLAGS_SUBJECT = "driver, no V8 flags";
export const FORMER_FLAGS_SUBJECT = "driver, former heap flags";

/** Where the start-up snapshot for a runtime's Node is built (measureFloor builds it before the runtime's first start). */
function snapshotBlob(runtime: FloorRuntime): string {
  return join(benchRoot(), `snapshot-${runtime.version}.blob`);
}

function start(runtime: FloorRuntime, subject: FloorSubject, name: string): Promise<RunningDriver> {
  return startDriver({
    name,
    node: runtime.node,
    args: subject.args.map((a) => a.replace("<dir>", join(benchRoot(), name))),
    env: { ...subject.environment, NODE_OPTIONS: subject.nodeOptions },
    ...(subject.entry !== undefined ? { entry: subject.entry } : {}),
    ...(subject.snapshot ? { snapshotBlob: snapshotBlob(runtime) } : {}),
    ...(subject.nodeArgs ? { nodeOptions: subject.nodeArgs } : {}),
  });
}

async function measureOne(
  runtime: FloorRuntime,
  subject: FloorSubject,
  tag: string,
  extraStarts: number[],
  extraIdle: RssSample[],
  log: FloorOptions["log"],
): Promise<FloorMeasure> {
  const driver = await start(runtime, subject, tag);
  let client: Awaited<ReturnType<typeof startLoadClient>> | undefined;
  try {
    const cpu0 = cpuMicros(driver.pid);
    await sleep(2000);
    const idleCpuUs = cpuMicros(driver.pid) - cpu0;
    const idle = rssSample(driver.pid);
    client = await startLoadClient(driver.endpoint);
    const firstRun = await unaryRun(driver.pid, client, "probe", FLOOR_FIRST_CALLS, FLOOR_CONCURRENCY);
    await sleep(2000);
    const afterFirst = rssSample(driver.pid);
    const restRun = await unaryRun(driver.pid, client, "probe", FLOOR_TOTAL_CALLS - FLOOR_FIRST_CALLS, FLOOR_CONCURRENCY);
    await sleep(2000);
    const afterTotal = rssSample(driver.pid);
    const m = (b: number) => (b / 2 ** 20).toFixed(1);
    log(
      `  ${runtime.name} ${subject.name}: ready ${driver.readyMs.toFixed(0)} ms, RSS idle ${m(idle.rss)} / after ${FLOOR_FIRST_CALLS} ${m(afterFirst.rss)} / after ${FLOOR_TOTAL_CALLS} ${m(afterTotal.rss)} MiB, ` +
        `CPU/Probe ${firstRun.driverCpuUsPerCall.toFixed(0)} then ${restRun.driverCpuUsPerCall.toFixed(0)} µs`,
    );
    return {
      subject: subject.name,
      nodeOptions: subject.nodeOptions,
      ...(subject.nodeArgs ? { nodeArgs: subject.nodeArgs.join(" ") } : {}),
      ...(subject.environment && Object.keys(subject.environment).length > 0
        ? {
            environment: Object.entries(subject.environment)
              .map(([name, value]) => `${name}=${value}`)
              .join(" "),
          }
        : {}),
      readyMs: [driver.readyMs, ...extraStarts],
      idle,
      idleSamples: [idle, ...extraIdle],
      idleCpuUs,
      afterFirst,
      afterTotal,
      firstRun,
      restRun,
    };
  } finally {
    await client?.stop();
    await driver.stop();
  }
}

export async function measureFloor(options: FloorOptions): Promise<FloorRuntimeResult[]> {
  const out: FloorRuntimeResult[] = [];
  for (const runtime of floorRuntimes()) {
    // As the image does when it is built: the snapshot is bound to the Node that builds it.
    buildSnapshot(runtime.node, snapshotBlob(runtime), join(dirname(driverEntryPath()), "build-snapshot.js"));
    const subjects = floorSubjects("<dir>");
    // Start-up: the subjects interleaved, so a busy moment of the shared machine hits all of them.
    const starts = new Map<string, number[]>(subjects.map((s) => [s.name, []]));
    const idles = new Map<string, RssSample[]>(subjects.map((s) => [s.name, []]));
    for (let i = 0; i < options.starts; i++) {
      for (const [k, subject] of subjects.entries()) {
        const d = await start(runtime, subject, `floor-start-${k}-${i}`);
        starts.get(subject.name)?.push(d.readyMs);
        await sleep(2000);
        idles.get(subject.name)?.push(rssSample(d.pid));
        const code = await d.stop();
        if (code !== 0) throw new Error(`${subject.name} exited with ${code} after SIGTERM; see ${d.logFile}`);
        await sleep(50);
      }
    }
    options.log(
      `  ${runtime.name} (v${runtime.version}) start-ups: ${subjects.map((s) => `${s.name} ${(starts.get(s.name) ?? []).map((n) => n.toFixed(0)).join("/")} ms`).join("; ")}`,
    );
    // Load: one process per subject in turn, `loadReps` rounds, for the same reason.
    const rounds: FloorMeasure[][] = [];
    for (let r = 0; r < options.loadReps; r++) {
      const round: FloorMeasure[] = [];
      for (const [k, subject] of subjects.entries())
        round.push(
          await measureOne(
            runtime,
            subject,
            `floor-${k}-${r}`,
            r === 0 ? (starts.get(subject.name) ?? []) : [],
            r === 0 ? (idles.get(subject.name) ?? []) : [],
            options.log,
          ),
        );
      rounds.push(round);
    }
    const measures = subjects.map((_, k) => withLoads(rounds.map((round) => round[k] as FloorMeasure)));
    out.push({ runtime, measures });
  }
  return out;
}

/** The first process's record, with every process's load figures. */
function withLoads(processes: readonly FloorMeasure[]): FloorMeasure {
  const [first] = processes;
  if (!first) throw new Error("no process measured");
  return {
    ...first,
    loads: processes.map((m) => ({
      afterFirst: m.afterFirst,
      afterTotal: m.afterTotal,
      firstCpuUsPerCall: m.firstRun.driverCpuUsPerCall,
      restCpuUsPerCall: m.restRun.driverCpuUsPerCall,
      p50Us: m.restRun.segments.at(-1)?.p50Us ?? Number.NaN,
      p99Us: m.restRun.segments.at(-1)?.p99Us ?? Number.NaN,
    })),
  };
}
