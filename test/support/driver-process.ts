import { spawn, type ChildProcess } from "node:child_process";
import { resolve } from "node:path";
import { socketAcceptsConnections } from "../../src/csi/unix-socket.js";

export const DRIVER_ENTRY = resolve("dist/do-csi-plugin.js");

export interface DriverProcess {
  readonly child: ChildProcess;
  readonly endpoint: string;
  /** Everything the process wrote to stderr (its log) so far. */
  stderr(): string;
  stdout(): string;
  /** Send a signal and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code when the process ends on its own. */
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  /** Command prefix, e.g. ["unshare", "--mount", "sh", "-c", ...] handled by the caller via `command`. */
  readonly command?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly timeoutMs?: number;
}

/** Start the built driver with `args` and wait until its unix socket accepts connections. */
export async function startDriver(socketPath: string, args: readonly string[], options: StartOptions = {}): Promise<DriverProcess> {
  const argv = [...(options.command ?? ["node", DRIVER_ENTRY]), "--endpoint", `unix://${socketPath}`, ...args];
  const child = spawn(argv[0] ?? "node", argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...options.env } });
  let err = "";
  let out = "";
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  // "close" (not "exit"): stdout and stderr are fully read by then.
  const exited = new Promise<number | null>((res) => child.once("close", (code) => res(code)));
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  while (!(await socketAcceptsConnections(socketPath, 200))) {
    if (exitCode !== undefined) throw new Error(`driver exited with ${exitCode} before serving:\n${err}`);
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`driver did not serve ${socketPath} in time:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    child,
    endpoint: `unix://${socketPath}`,
    stderr: () => err,
    stdout: () => out,
    exited,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Run the driver to completion (for --version, --help, bad flags). */
export function runDriver(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn("node", [DRIVER_ENTRY, ...args], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("close", (code) => res({ code, stdout, stderr }));
  });
}
