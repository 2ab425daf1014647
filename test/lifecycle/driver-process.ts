import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { connectCsi } from "../../src/csi/client.js";

/** The driver as users run it: the bundled binary, in its own process. */
export const DRIVER_BINARY = resolve("dist/do-csi-plugin.js");

export function requireBuiltDriver(): void {
  if (!existsSync(DRIVER_BINARY)) throw new Error(`${DRIVER_BINARY} is missing: run npm run build (npm test does it first)`);
}

/**
 * One driver process (a controller, a node plugin, or both), started from the
 * built binary with real flags, that can be stopped, killed (SIGKILL, as a
 * crash or an OOM kill would) and started again with the same flags.
 */
export class DriverProcess {
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #log: FileHandle | undefined;
  restarts = 0;

  constructor(
    readonly name: string,
    readonly socketPath: string,
    readonly args: readonly string[],
    readonly logPath: string,
    /** What starts the driver, before its arguments: the bundle on this Node by default (test/support/driver-process.ts's snapshotCommand starts it as the image does). */
    readonly launch: readonly string[] = [process.execPath, DRIVER_BINARY],
  ) {}

  get endpoint(): string {
    return `unix://${this.socketPath}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  async start(): Promise<void> {
    if (this.#child !== undefined) throw new Error(`${this.name} is already running`);
    requireBuiltDriver();
    this.#log ??= await open(this.logPath, "a");
    await this.#log.write(`--- start ${this.name} (${new Date().toISOString()}): ${this.args.join(" ")}\n`);
    const [command = process.execPath, ...prefix] = this.launch;
    const child = spawn(command, [...prefix, "--endpoint", this.endpoint, ...this.args], {
      stdio: ["ignore", this.#log.fd, this.#log.fd],
    });
    this.#child = child;
    this.#exited = new Promise((done) => child.once("exit", () => done()));
    await this.#waitReady(child);
  }

  /** Wait until the socket answers Probe; fail early if the process dies. */
  async #waitReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + 20_000;
    let last = "";
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(`${this.name} exited (${child.exitCode ?? child.signalCode}) while starting; see ${this.logPath}`);
      if (existsSync(this.socketPath)) {
        const clients = connectCsi(this.endpoint);
        try {
          const answer = await clients.identity.probe({}, { timeoutMs: 2_000 });
          if (answer.ready !== false) return;
          last = "Probe: not ready";
        } catch (err) {
          last = (err as Error).message;
        } finally {
          clients.close();
        }
      }
      await sleep(50);
    }
    throw new Error(`${this.name} did not become ready within 20 s (${last}); see ${this.logPath}`);
  }

  /** SIGTERM and wait for a graceful exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await this.#exited;
    clearTimeout(timer);
    this.#child = undefined;
  }

  /** SIGKILL: no cleanup, no socket removal; in-flight calls are cut. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await this.#exited;
    this.#child = undefined;
  }

  /** Crash and come back, as a pod restart after an OOM kill does. */
  async crashAndRestart(downMs = 0): Promise<void> {
    await this.kill();
    if (downMs > 0) await sleep(downMs);
    this.restarts++;
    await this.start();
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#log?.close();
    this.#log = undefined;
  }
}
