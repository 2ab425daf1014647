import { spawn } from "./spawn.js";
import { findExecutable } from "./executables.js";

export interface RunOptions {
  /** Kills the command when aborted (the caller's gRPC deadline). */
  readonly signal?: AbortSignal;
  /** Upper bound regardless of the signal. */
  readonly timeoutMs?: number;
  /** Written to the command's standard input. */
  readonly input?: string;
  /** Exit codes that are not failures (e.g. blkid's 2 for "nothing found"). */
  readonly okExitCodes?: readonly number[];
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** A host command that failed: carries its exit code and standard error so callers can decide and report. */
export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    detail: string,
  ) {
    super(`${[command, ...args].join(" ")}: ${detail}`);
    this.name = "CommandError";
  }
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;

/**
 * What is kept of each of a command's output streams. Every output the
 * driver parses (losetup --show, blkid -o export, dumpe2fs -h, xfs_info) is a
 * few KiB, and error messages use the last lines of stderr; a command that
 * writes more (a corrupt filesystem's endless e2fsck report) keeps its first
 * and last 32 KiB around a marker saying how much was left out.
 */
export const OUTPUT_HEAD_BYTES = 32 * 1024;
export const OUTPUT_TAIL_BYTES = 32 * 1024;

/** Collects a stream's output keeping at most its head and its tail. */
export class BoundedOutput {
  readonly #head: Buffer[] = [];
  #headBytes = 0;
  #tail: Buffer[] = [];
  #tailBytes = 0;
  #total = 0;

  constructor(
    readonly headLimit = OUTPUT_HEAD_BYTES,
    readonly tailLimit = OUTPUT_TAIL_BYTES,
  ) {}

  push(chunk: Buffer): void {
    this.#total += chunk.length;
    if (this.#headBytes < this.headLimit) {
      const take = chunk.subarray(0, this.headLimit - this.#headBytes);
      this.#head.push(take);
      this.#headBytes += take.length;
      chunk = chunk.subarray(take.length);
      if (chunk.length === 0) return;
    }
    // Keep whole chunks until the tail limit is passed, then trim once from the front.
    this.#tail.push(chunk.length > this.tailLimit ? chunk.subarray(chunk.length - this.tailLimit) : chunk);
    this.#tailBytes += Math.min(chunk.length, this.tailLimit);
    if (this.#tailBytes > 2 * this.tailLimit) this.#trimTail();
  }

  #trimTail(): void {
    const tail = Buffer.concat(this.#tail);
    this.#tail = [tail.subarray(tail.length - Math.min(tail.length, this.tailLimit))];
    this.#tailBytes = this.#tail[0]?.length ?? 0;
  }

  /** The output as text: whole when it fit, otherwise head, a marker with the bytes left out, and tail. */
  text(): string {
    this.#trimTail();
    const head = Buffer.concat(this.#head);
    const tail = this.#tail[0] ?? Buffer.alloc(0);
    const omitted = this.#total - head.length - tail.length;
    if (omitted === 0) return Buffer.concat([head, tail]).toString("utf8");
    return `${head.toString("utf8")}\n[... ${omitted} bytes of output omitted ...]\n${tail.toString("utf8")}`;
  }
}

/** At most the last `max` characters of a command's message for an error: the end says what went wrong. */
function lastPart(text: string, max = 1024): string {
  return text.length <= max ? text : `...${text.slice(text.length - max)}`;
}

const resolved = new Map<string, string>();

async function resolveCommand(command: string): Promise<string> {
  if (command.includes("/")) return command;
  const cached = resolved.get(command);
  if (cached) return cached;
  const path = await findExecutable(command);
  if (!path) throw new CommandError(command, [], null, "", `${command} is not installed on this host`);
  resolved.set(command, path);
  return path;
}

/**
 * Run a host command with an argv array (never through a shell). It is killed
 * when the signal aborts or the timeout passes; a non-zero exit (unless listed
 * in okExitCodes) rejects with a CommandError whose message carries stderr.
 */
export async function run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  options.signal?.throwIfAborted();
  const path = await resolveCommand(command);
  return new Promise<RunResult>((resolve, reject) => {
    const child = spawn(path, args, {
      stdio: [options.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C" },
      signal: options.signal,
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      killSignal: "SIGKILL",
    });
    const out = new BoundedOutput();
    const err = new BoundedOutput();
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);
    let spawnError: Error | undefined;
    child.on("error", (e) => {
      spawnError = e;
    });
    child.on("close", (code, signal) => {
      const stdout = out.text();
      const stderr = err.text();
      if (spawnError) {
        const aborted = spawnError.name === "AbortError";
        reject(new CommandError(command, args, null, stderr, aborted ? "cancelled: the call's deadline expired" : spawnError.message));
        return;
      }
      if (code === null) {
        reject(new CommandError(command, args, null, stderr, `killed by ${signal ?? "a signal"} (timed out or cancelled)`));
        return;
      }
      if (code !== 0 && !(options.okExitCodes ?? []).includes(code)) {
        const text = lastPart((stderr.trim() || stdout.trim()).split("\n").slice(-5).join("; "));
        reject(new CommandError(command, args, code, stderr, `exit status ${code}${text ? `: ${text}` : ""}`));
        return;
      }
      resolve({ stdout, stderr, exitCode: code });
    });
  });
}
