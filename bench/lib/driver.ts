import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, openSync, closeSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { benchRoot, track } from "./cleanup.js";

let driverEntry = resolve("dist/do-csi-plugin.js");

/** The driver entry point used by startDriver (a snapshot of dist/, see run.ts). */
export function useDriverEntry(path: string): void {
  driverEntry = resolve(path);
}

export function driverEntryPath(): string {
  return driverEntry;
}

/**
 * PATH of the driver's processes: a host's (and the image's) standard one. `npm run`
 * prepends every node_modules/.bin up the tree, which the driver would search
 * for its host tools; a deployed plugin never has those entries.
 */
export const DRIVER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface RunningDriver {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly dir: string;
  readonly socketPath: string;
  readonly endpoint: string;
  readonly logFile: string;
  /** Spawn -> first successful Probe, in ms. */
  readonly readyMs: number;
  /** Spawn -> the socket file exists, in ms. */
  readonly socketMs: number;
  /** Connected clients (the connection that answered the first Probe). */
  readonly clients: CsiClients;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed by a signal). */
  stop(graceMs?: number): Promise<number | null>;
}

export interface StartOptions {
  /** Directory name under the bench root (created); the socket and the log live there. */
  readonly name: string;
  readonly args: readonly string[];
  readonly timeoutMs?: number;
  readonly env?: NodeJS.ProcessEnv;
  /** Options for node itself, before the entry (diagnostics only; measured runs use none). */
  readonly nodeOptions?: readonly string[];
  /** The Node binary (default: the one running the bench). */
  readonly node?: string;
  /** The program (default: the driver's bundle); it takes `--endpoint unix://...` as the driver does. */
  readonly entry?: string;
  /** Start the driver from this start-up snapshot (`node --snapshot-blob FILE -- ARGS`, as the image does) instead of `entry`. */
  readonly snapshotBlob?: string;
}

/**
 * Spawn the built driver (`node dist/do-csi-plugin.js ... --endpoint unix://<dir>/csi.sock`)
 * with its log going to <dir>/driver.log, and poll until a Probe succeeds:
 * wait for the socket file (1 ms steps), then connect and call Probe (2 ms
 * between failed attempts). The time from spawn to that first successful Probe
 * is the start-up figure.
 */
export async function startDriver(options: StartOptions): Promise<RunningDriver> {
  const dir = join(benchRoot(), options.name);
  await mkdir(dir, { recursive: true });
  const socketPath = join(dir, "csi.sock");
  const endpoint = `unix://${socketPath}`;
  const logFile = join(dir, "driver.log");
  const logFd = openSync(logFile, "a");
  const started = performance.now();
  const child = track(
    spawn(
      options.node ?? process.execPath,
      [
        ...(options.nodeOptions ?? []),
        ...(options.snapshotBlob !== undefined ? ["--snapshot-blob", options.snapshotBlob, "--"] : [options.entry ?? driverEntry]),
        "--endpoint",
        endpoint,
        ...options.args,
      ],
      {
        stdio: ["ignore", logFd, logFd],
        env: { ...process.env, PATH: DRIVER_PATH, ...options.env },
      },
    ),
  );
  closeSync(logFd);
  const pid = child.pid;
  if (pid === undefined) throw new Error("could not spawn the driver");
  let exit: string | undefined;
  const exited = new Promise<number | null>((res) =>
    child.once("exit", (code, signal) => {
      exit = signal ?? String(code);
      res(code);
    }),
  );
  const deadline = started + (options.timeoutMs ?? 20_000);
  let socketMs = NaN;
  let clients: CsiClients | undefined;
  try {
    while (clients === undefined) {
      if (exit !== undefined) throw new Error(`the driver exited (${exit}) before answering Probe; see ${logFile}`);
      if (performance.now() > deadline)
        throw new Error(`the driver did not answer Probe within ${options.timeoutMs ?? 20_000} ms; see ${logFile}`);
      if (!existsSync(socketPath)) {
        await sleep(1);
        continue;
      }
      if (Number.isNaN(socketMs)) socketMs = performance.now() - started;
      const attempt = connectCsi(endpoint);
      try {
        await attempt.identity.probe({}, { timeoutMs: 2000 });
        clients = attempt;
      } catch {
        attempt.close();
        await sleep(2);
      }
    }
  } catch (err) {
    child.kill("SIGKILL");
    await exited;
    throw err;
  }
  const readyMs = performance.now() - started;
  const connected = clients;
  return {
    pid,
    child,
    dir,
    socketPath,
    endpoint,
    logFile,
    readyMs,
    socketMs,
    clients: connected,
    async stop(graceMs = 15_000) {
      connected.close();
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
