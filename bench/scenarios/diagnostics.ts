/**
 * Evidence for the analysis of misses, gathered from separate driver processes
 * (never the measured ones): V8 CPU profiles of the unary load, V8 heap figures
 * from Node diagnostic reports, and an strace count of what one local volume
 * life does on the host, for the driver and for the plain script.
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile } from "node:fs/promises";
import { SourceMap, type SourceMapPayload } from "node:module";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { benchRoot, track } from "../lib/cleanup.js";
import { DRIVER_PATH, startDriver, type RunningDriver } from "../lib/driver.js";
import { diagnosticNodeOptions, forceFullGc, REPORT_OPTIONS, reportOf, type HeapFigures } from "../lib/node-report.js";
import { mib } from "../lib/proc.js";
import type { UnaryMethod } from "../lib/protocol.js";
import { nodePluginArgs, startLoadClient, unaryRun, warmUp } from "./footprint.js";
import { driverLife, LIFE_SCRIPT } from "./local-life.js";

const execFileAsync = promisify(execFile);

// ---------------------------------------------------------------- CPU profiles

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface ProfileShare {
  readonly name: string;
  readonly ms: number;
  /** Share of the busy (non-idle) time, percent. */
  readonly percent: number;
}

export interface CpuProfileSummary {
  /** The unary method profiled, or "start-up". */
  readonly method: UnaryMethod | "start-up";
  readonly calls: number;
  readonly concurrency: number;
  /** Sampled non-idle time. */
  readonly busyMs: number;
  readonly busyUsPerCall: number;
  /** Self time grouped by where the code comes from (package, node internals, project source, GC). */
  readonly byOrigin: readonly ProfileShare[];
  /** Functions with the most self time. */
  readonly topFunctions: readonly ProfileShare[];
}

const sourceMaps = new Map<string, SourceMap | null>();

async function sourceMapFor(file: string): Promise<SourceMap | null> {
  if (sourceMaps.has(file)) return sourceMaps.get(file) ?? null;
  let map: SourceMap | null = null;
  try {
    map = new SourceMap(JSON.parse(await readFile(`${file}.map`, "utf8")) as SourceMapPayload);
  } catch {
    map = null;
  }
  sourceMaps.set(file, map);
  return map;
}

/** Where a frame's code comes from: an npm package, a project file, a node internal, or V8 itself. */
async function originOf(frame: ProfileNode["callFrame"]): Promise<{ origin: string; location: string }> {
  const { url, functionName, lineNumber, columnNumber } = frame;
  if (url === "") {
    if (functionName.startsWith("(")) return { origin: functionName, location: functionName };
    return { origin: "V8/native", location: functionName };
  }
  if (url.startsWith("node:")) {
    const area = url.slice(5).split("/").slice(0, 2).join("/");
    return { origin: `node:${area.startsWith("internal/") ? area.slice(9) : area}`, location: url };
  }
  const file = url.startsWith("file://") ? fileURLToPath(url) : url;
  let source = file;
  let line = lineNumber + 1;
  const map = await sourceMapFor(file);
  if (map) {
    const entry = map.findEntry(lineNumber, columnNumber);
    if ("originalSource" in entry) {
      source = entry.originalSource;
      line = entry.originalLine + 1;
    }
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(source);
  if (nm?.[1]) return { origin: nm[1], location: `${nm[1]}/${basename(source)}:${line}` };
  const src = /(?:^|\/)(src\/.*)$/.exec(source);
  if (src?.[1]) return { origin: "project src/", location: `${src[1]}:${line}` };
  return { origin: basename(source), location: `${basename(source)}:${line}` };
}

async function summarizeProfile(
  path: string,
  method: UnaryMethod | "start-up",
  calls: number,
  concurrency: number,
): Promise<CpuProfileSummary> {
  const profile = JSON.parse(await readFile(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const origins = new Map<string, number>();
  const functions = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node || node.callFrame.functionName === "(idle)") continue;
    busy += us;
    const { origin, location } = await originOf(node.callFrame);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const name =
      `${node.callFrame.functionName || "(anonymous)"} ${location === node.callFrame.functionName ? "" : `(${location})`}`.trim();
    functions.set(name, (functions.get(name) ?? 0) + us);
  }
  const shares = (m: Map<string, number>, n: number): ProfileShare[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([name, us]) => ({ name, ms: us / 1000, percent: (100 * us) / busy }));
  return {
    method,
    calls,
    concurrency,
    busyMs: busy / 1000,
    busyUsPerCall: busy / calls,
    byOrigin: shares(origins, 10),
    topFunctions: shares(functions, 12),
  };
}

async function profileUnary(method: UnaryMethod, calls: number): Promise<CpuProfileSummary> {
  const name = `diag-profile-${method}`;
  const profDir = join(benchRoot(), name, "profile");
  await mkdir(profDir, { recursive: true });
  const driver = await startDriver({
    name,
    args: nodePluginArgs(join(benchRoot(), name)),
    nodeOptions: ["--cpu-prof", `--cpu-prof-dir=${profDir}`],
  });
  const client = await startLoadClient(driver.endpoint);
  try {
    await warmUp(client, [method]);
    await unaryRun(driver.pid, client, method, calls, 64);
  } finally {
    await client.stop();
    await driver.stop();
  }
  const [file] = (await readdir(profDir)).filter((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no CPU profile written in ${profDir}`);
  // The profile covers the whole process; the start-up and warm-up are small next to `calls` calls.
  return summarizeProfile(join(profDir, file), method, calls, 64);
}

/** Profile of a node plugin from spawn to its first successful Probe (it is stopped right after). */
async function profileStartup(): Promise<CpuProfileSummary & { readonly readyMs: number }> {
  const name = "diag-profile-startup";
  const profDir = join(benchRoot(), name, "profile");
  await mkdir(profDir, { recursive: true });
  const driver = await startDriver({
    name,
    args: nodePluginArgs(join(benchRoot(), name)),
    nodeOptions: ["--cpu-prof", `--cpu-prof-dir=${profDir}`],
  });
  await driver.stop();
  const [file] = (await readdir(profDir)).filter((f) => f.endsWith(".cpuprofile"));
  if (!file) throw new Error(`no CPU profile written in ${profDir}`);
  return { ...(await summarizeProfile(join(profDir, file), "start-up", 1, 1)), readyMs: driver.readyMs };
}

// ---------------------------------------------------------------- the per-call log line

export interface LogLevelComparison {
  readonly calls: number;
  /** NodeGetCapabilities at c=64, driver CPU µs per call, per round (info and warn interleaved). */
  readonly info: readonly number[];
  readonly warn: readonly number[];
}

/**
 * NodeGetCapabilities is logged at info (one line per call), Probe is not:
 * the same load against a driver at the default level and one at warn,
 * interleaved, shows what the line costs.
 */
async function compareLogLevels(calls: number, rounds: number): Promise<LogLevelComparison> {
  const info: number[] = [];
  const warn: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const level of ["info", "warn"] as const) {
      const name = `diag-log-${level}-${round}`;
      const driver = await startDriver({ name, args: [...nodePluginArgs(join(benchRoot(), name)), "--log-level", level] });
      const client = await startLoadClient(driver.endpoint);
      try {
        await warmUp(client, ["nodeGetCapabilities"]);
        const run = await unaryRun(driver.pid, client, "nodeGetCapabilities", calls, 64);
        (level === "info" ? info : warn).push(run.driverCpuUsPerCall);
      } finally {
        await client.stop();
        await driver.stop();
      }
    }
  }
  return { calls, info, warn };
}

// ---------------------------------------------------------------- heap figures

export interface HeapDiagnosis {
  readonly idle: HeapFigures;
  readonly afterLoad: HeapFigures;
  /** After a full garbage collection (a heap snapshot forces one): what the load left alive. */
  readonly afterFullGc?: HeapFigures;
  readonly calls: number;
  /** Node diagnostic report of a bare `node -e` idle process, for comparison. */
  readonly bareNode: HeapFigures;
}

async function diagnoseHeap(calls: number): Promise<HeapDiagnosis> {
  const name = "diag-heap";
  const reportDir = join(benchRoot(), name, "reports");
  await mkdir(reportDir, { recursive: true });
  const bare = track(spawn(process.execPath, [...REPORT_OPTIONS(reportDir), "-e", "setInterval(() => {}, 1 << 30)"], { stdio: "ignore" }));
  let driver: RunningDriver | undefined;
  try {
    driver = await startDriver({
      name,
      args: nodePluginArgs(join(benchRoot(), name)),
      nodeOptions: diagnosticNodeOptions(reportDir),
    });
    await sleep(2000);
    const idle = await reportOf(driver.pid, reportDir);
    if (bare.pid === undefined) throw new Error("could not spawn node");
    const bareNode = await reportOf(bare.pid, reportDir);
    const client = await startLoadClient(driver.endpoint);
    let total = 0;
    try {
      total = await warmUp(client);
      await unaryRun(driver.pid, client, "nodeGetCapabilities", calls, 64);
      total += calls;
    } finally {
      await client.stop();
    }
    await sleep(2000);
    const afterLoad = await reportOf(driver.pid, reportDir);
    let afterFullGc: HeapFigures | undefined;
    try {
      await forceFullGc(driver.pid, reportDir);
      await sleep(1000);
      afterFullGc = await reportOf(driver.pid, reportDir);
    } catch {
      afterFullGc = undefined;
    }
    return { idle, afterLoad, ...(afterFullGc ? { afterFullGc } : {}), calls: total, bareNode };
  } finally {
    bare.kill("SIGKILL");
    await driver?.stop();
  }
}

// ---------------------------------------------------------------- host work of a local volume life

export interface HostWork {
  /** Programs executed, by name. */
  readonly exec: Record<string, number>;
  readonly fsync: number;
  readonly rename: number;
  /** Files opened, grouped (loop backing files in sysfs, mountinfo, ...). */
  readonly opens: Record<string, number>;
}

export interface LifeTrace {
  readonly driver: HostWork;
  readonly script: HostWork;
  /** Loop devices in /sys/block (attached or not, anyone's) just before the traced life: the driver tries each one's backing file. */
  readonly hostLoopDevices: number;
  readonly hostMounts: number;
}

function openGroup(path: string): string {
  if (/^\/sys\/block\/loop\d+\/loop\/backing_file$/.test(path)) return "/sys/block/loop*/loop/backing_file";
  if (path === "/proc/self/mountinfo") return path;
  if (/^\/sys\//.test(path)) return "other /sys files";
  if (/^\/dev\//.test(path)) return "/dev nodes";
  if (/state\.json/.test(path)) return "state.json (+ temp files)";
  if (/\.(so(\.\d+)*|cache)$/.test(path) || path.startsWith("/etc/") || path.startsWith("/usr/lib") || path.startsWith("/lib"))
    return "libraries and /etc (tools starting)";
  return "other";
}

function parseTrace(text: string): HostWork {
  const exec: Record<string, number> = {};
  const opens: Record<string, number> = {};
  let fsync = 0;
  let rename = 0;
  for (const line of text.split("\n")) {
    const call = /^\d+\s+(?:\d+:\d+:\d+\.\d+\s+)?(\w+)\((.*)$/.exec(line);
    if (!call) continue;
    const [, name, rest] = call;
    if (rest === undefined) continue;
    // Failed calls count too (a failed open still costs the driver a thread-pool round trip and an exception);
    // with -f, a call's result may be on a later "resumed" line anyway.
    switch (name) {
      case "execve": {
        const file = /^"([^"]+)"/.exec(rest)?.[1] ?? "?";
        const prog = basename(file);
        exec[prog] = (exec[prog] ?? 0) + 1;
        break;
      }
      case "fsync":
      case "fdatasync":
        fsync++;
        break;
      case "rename":
      case "renameat":
      case "renameat2":
        rename++;
        break;
      case "openat": {
        const path = /"([^"]+)"/.exec(rest)?.[1] ?? "?";
        const group = openGroup(path);
        opens[group] = (opens[group] ?? 0) + 1;
        break;
      }
    }
  }
  return { exec, fsync, rename, opens };
}

const TRACED = "trace=execve,fsync,fdatasync,rename,renameat,renameat2,openat";

async function traceLife(): Promise<LifeTrace | undefined> {
  if (!existsSync("/usr/bin/strace")) return undefined;
  const dir = join(benchRoot(), "diag-life");
  const mnt = join(dir, "mnt");
  const work = join(dir, "script");
  await mkdir(mnt, { recursive: true });
  await mkdir(work, { recursive: true });
  const driverTrace = join(dir, "driver.strace");
  const driver = await startDriver({
    name: "diag-life/driver",
    args: ["--backend", "local", "--mode", "all", "--data-dir", join(dir, "data"), "--node-id", "n1"],
  });
  const loopsNow = async () => (await readdir("/sys/block")).filter((n) => /^loop\d+$/.test(n)).length;
  let loops = 0;
  try {
    await driverLife(driver.clients, mnt, "warmup");
    loops = await loopsNow();
    const strace = track(
      spawn("strace", ["-f", "-qq", "-e", TRACED, "-o", driverTrace, "-p", String(driver.pid)], { stdio: ["ignore", "ignore", "pipe"] }),
    );
    // strace reports nothing when attached with -qq: give it time to attach to every thread.
    await sleep(1000);
    await driverLife(driver.clients, mnt, "traced");
    await sleep(200);
    strace.kill("SIGINT");
    await new Promise((res) => strace.once("exit", res));
  } finally {
    await driver.stop();
  }
  const scriptTrace = join(dir, "script.strace");
  await execFileAsync("strace", ["-f", "-qq", "-e", TRACED, "-o", scriptTrace, resolve(LIFE_SCRIPT), work, "traced"], {
    env: { ...process.env, PATH: DRIVER_PATH },
  });
  const mounts = (await readFile("/proc/self/mountinfo", "utf8")).split("\n").filter(Boolean).length;
  return {
    driver: parseTrace(await readFile(driverTrace, "utf8")),
    script: parseTrace(await readFile(scriptTrace, "utf8")),
    hostLoopDevices: loops,
    hostMounts: mounts,
  };
}

// ---------------------------------------------------------------- all

export interface Diagnostics {
  readonly profiles: readonly CpuProfileSummary[];
  readonly logLevels?: LogLevelComparison;
  /** Spawn -> first Probe (then SIGTERM), profiled; includes the short shutdown. */
  readonly startupProfile?: CpuProfileSummary & { readonly readyMs: number };
  readonly heap?: HeapDiagnosis;
  readonly lifeTrace?: LifeTrace;
  readonly errors: readonly string[];
}

export async function gatherDiagnostics(options: { calls: number; local: boolean; log: (line: string) => void }): Promise<Diagnostics> {
  const errors: string[] = [];
  const attempt = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await f();
    } catch (err) {
      const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
      errors.push(message);
      options.log(`  ${message}`);
      return undefined;
    }
  };
  const profiles: CpuProfileSummary[] = [];
  for (const method of ["probe", "nodeGetCapabilities"] as const) {
    const p = await attempt(`CPU profile of ${method}`, () => profileUnary(method, options.calls));
    if (p) {
      profiles.push(p);
      options.log(
        `  profile ${method}: ${p.busyUsPerCall.toFixed(0)} µs busy/call; ${p.byOrigin
          .slice(0, 5)
          .map((o) => `${o.name} ${o.percent.toFixed(0)}%`)
          .join(", ")}`,
      );
    }
  }
  const logLevels = await attempt("log level comparison", () => compareLogLevels(options.calls, 2));
  if (logLevels) {
    options.log(
      `  NodeGetCapabilities c=64 driver CPU/call: log level info ${logLevels.info.map((v) => v.toFixed(0)).join("/")} µs, warn ${logLevels.warn.map((v) => v.toFixed(0)).join("/")} µs`,
    );
  }
  const startupProfile = await attempt("CPU profile of the start-up", profileStartup);
  if (startupProfile) {
    options.log(
      `  profile start-up (ready in ${startupProfile.readyMs.toFixed(0)} ms under the profiler): ${startupProfile.busyMs.toFixed(0)} ms busy; ${startupProfile.byOrigin
        .slice(0, 6)
        .map((o) => `${o.name} ${o.percent.toFixed(0)}%`)
        .join(", ")}`,
    );
  }
  const heap = await attempt("heap report", () => diagnoseHeap(options.calls));
  if (heap) {
    options.log(
      `  heap: idle V8 heap ${mib(heap.idle.heapTotal).toFixed(1)} MiB of RSS ${mib(heap.idle.rss).toFixed(1)} MiB; after ${heap.calls} calls ${mib(heap.afterLoad.heapTotal).toFixed(1)} of ${mib(heap.afterLoad.rss).toFixed(1)} MiB` +
        (heap.afterFullGc
          ? `; after a full GC heap used ${mib(heap.afterFullGc.heapUsed).toFixed(1)} MiB, RSS ${mib(heap.afterFullGc.rss).toFixed(1)} MiB`
          : "") +
        `; bare node ${mib(heap.bareNode.heapTotal).toFixed(1)} of ${mib(heap.bareNode.rss).toFixed(1)} MiB`,
    );
  }
  const lifeTrace = options.local ? await attempt("strace of a local volume life", traceLife) : undefined;
  if (lifeTrace) {
    options.log(
      `  local life under strace: driver ${JSON.stringify(lifeTrace.driver)}; script ${JSON.stringify(lifeTrace.script)}; ${lifeTrace.hostLoopDevices} loop devices on the host`,
    );
  }
  return {
    profiles,
    ...(logLevels ? { logLevels } : {}),
    ...(startupProfile ? { startupProfile } : {}),
    ...(heap ? { heap } : {}),
    ...(lifeTrace ? { lifeTrace } : {}),
    errors,
  };
}
