import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { track } from "./cleanup.js";

/**
 * A helper process (TypeScript run through tsx) that answers requests over
 * Node's IPC channel, one at a time: the load client and the DigitalOcean
 * simulator run in their own processes so the driver is measured against a
 * client that does not share its CPU time or event loop with the orchestrator.
 */
interface Envelope {
  readonly id: number;
  readonly ok: boolean;
  readonly value?: unknown;
  readonly error?: string;
}

export class WorkerProcess<Req, Res> {
  readonly #child: ChildProcess;
  #nextId = 1;
  readonly #pending = new Map<number, { resolve: (v: Res) => void; reject: (e: Error) => void }>();
  #exited = false;
  readonly #exit: Promise<void>;

  private constructor(child: ChildProcess) {
    this.#child = child;
    child.on("message", (raw: unknown) => {
      const msg = raw as Envelope;
      const waiter = this.#pending.get(msg.id);
      if (!waiter) return;
      this.#pending.delete(msg.id);
      if (msg.ok) waiter.resolve(msg.value as Res);
      else waiter.reject(new Error(msg.error ?? "worker error"));
    });
    this.#exit = new Promise((res) =>
      child.once("exit", (code, signal) => {
        this.#exited = true;
        for (const w of this.#pending.values()) w.reject(new Error(`worker exited (${signal ?? code}) before answering`));
        this.#pending.clear();
        res();
      }),
    );
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  /** Start `file` (relative to the project root) and wait for its `ready` answer (request id 0). */
  static async start<Req, Res, Ready>(
    file: string,
    args: readonly string[] = [],
  ): Promise<{ worker: WorkerProcess<Req, Res>; ready: Ready }> {
    const child = track(
      spawn(process.execPath, ["--import", "tsx", resolve(file), ...args], { stdio: ["ignore", "inherit", "inherit", "ipc"] }),
    );
    const worker = new WorkerProcess<Req, Res>(child);
    const ready = await new Promise<Ready>((res, rej) => {
      worker.#pending.set(0, { resolve: (v) => res(v as unknown as Ready), reject: rej });
    });
    return { worker, ready };
  }

  request(req: Req): Promise<Res> {
    if (this.#exited) return Promise.reject(new Error("worker has exited"));
    const id = this.#nextId++;
    return new Promise<Res>((res, rej) => {
      this.#pending.set(id, { resolve: res, reject: rej });
      this.#child.send({ id, request: req });
    });
  }

  /** Disconnect (the worker exits when its IPC channel closes), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.#exited) return;
    if (this.#child.connected) this.#child.disconnect();
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    await this.#exit;
    clearTimeout(timer);
  }
}

/**
 * Worker side: announce readiness with `ready`, then answer each request with
 * `handle`. The worker runs `onClose` and exits when the parent disconnects.
 */
export function serveRequests<Req, Res>(
  ready: unknown,
  handle: (req: Req) => Promise<Res>,
  onClose: () => Promise<void> = async () => undefined,
): void {
  const send = (msg: Envelope) => process.send?.(msg);
  let queue: Promise<void> = Promise.resolve();
  process.on("message", (raw: unknown) => {
    const { id, request } = raw as { id: number; request: Req };
    queue = queue.then(async () => {
      try {
        send({ id, ok: true, value: await handle(request) });
      } catch (err) {
        send({ id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    });
  });
  process.on("disconnect", () => {
    void queue.then(onClose).finally(() => process.exit(0));
  });
  send({ id: 0, ok: true, value: ready });
}
