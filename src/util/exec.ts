import { spawn } from "node:child_process";
import { findExecutable } from "../mounter/host-tools.js";

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
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on("data", (chunk: Buffer) => out.push(chunk));
    child.stderr?.on("data", (chunk: Buffer) => err.push(chunk));
    if (options.input !== undefined) child.stdin?.end(options.input);
    let spawnError: Error | undefined;
    child.on("error", (e) => {
      spawnError = e;
    });
    child.on("close", (code, signal) => {
      const stdout = Buffer.concat(out).toString("utf8");
      const stderr = Buffer.concat(err).toString("utf8");
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
        const text = (stderr.trim() || stdout.trim()).split("\n").slice(-5).join("; ");
        reject(new CommandError(command, args, code, stderr, `exit status ${code}${text ? `: ${text}` : ""}`));
        return;
      }
      resolve({ stdout, stderr, exitCode: code });
    });
  });
}
