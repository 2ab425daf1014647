import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { CsiClients } from "../../src/csi/client.js";
import { socketAcceptsConnections } from "../../src/csi/unix-socket.js";

export const DRIVER_ENTRY = resolve("dist/do-csi-plugin.js");

/**
 * A Node.js binary to run the bundle with. The bundle is what ships, and it
 * ships on the Node version the image pins (Dockerfile NODE_VERSION), which
 * the devDependency `node-image` installs; users of the npm package run it on
 * their own Node, as the test runner's stands for.
 */
export interface NodeRuntime {
  /** "Node 20.20.2 (test runner)": names the runtime in test titles. */
  readonly name: string;
  readonly node: string;
  /** Its Node version, e.g. "22.23.3". */
  readonly version: string;
}

/** Where `npm ci` puts the image's Node (the `node-image` devDependency). */
export const IMAGE_NODE_PACKAGE = resolve("node_modules/node-image");

export const RUNNER_NODE: NodeRuntime = {
  name: `Node ${process.versions.node} (test runner)`,
  node: process.execPath,
  version: process.versions.node,
};

export const IMAGE_NODE: NodeRuntime = {
  name: `Node ${imageNodeVersion()} (image)`,
  node: resolve(IMAGE_NODE_PACKAGE, "bin/node"),
  version: imageNodeVersion(),
};

/**
 * Build the plugin's start-up snapshot for the Node binary `node` into `blob`,
 * as the image does when it is built (`node dist/build-snapshot.js FILE`,
 * Dockerfile); `buildScript` is that script of the bundle to use.
 */
export function buildSnapshot(node: string, blob: string, buildScript = resolve("dist/build-snapshot.js")): void {
  const built = spawnSync(node, [buildScript, blob], { encoding: "utf8" });
  if (built.status !== 0) throw new Error(`building the start-up snapshot with ${node} failed:\n${built.stderr}${built.stdout}`);
}

/**
 * How the image starts the plugin (its ENV and ENTRYPOINT, read from the
 * Dockerfile): in the image's environment (through env(1), which execs the
 * command, so the pid is node's), with its Node flags, from a snapshot
 * `buildSnapshot` made for the same runtime; the plugin's arguments follow.
 */
export function snapshotCommand(runtime: NodeRuntime, blob: string): readonly string[] {
  const environment = Object.entries(imageEnvironment()).filter(([name]) => name !== "NODE_OPTIONS");
  return [
    ...(environment.length > 0 ? ["env", ...environment.map(([name, value]) => `${name}=${value}`)] : []),
    runtime.node,
    ...imageEntrypointNodeFlags(),
    "--snapshot-blob",
    blob,
    "--",
  ];
}

/**
 * The environment the image runs the plugin in: the `ENV` lines of the
 * Dockerfile's runtime (last) stage, with NODE_OPTIONS empty unless it sets
 * it (so that the caller's own never leaks in).
 */
export function imageEnvironment(): Readonly<Record<string, string>> {
  const stages = readFileSync("Dockerfile", "utf8").split(/^FROM\s/m);
  const environment: Record<string, string> = { NODE_OPTIONS: "" };
  for (const [, name = "", quoted, bare] of (stages.at(-1) ?? "").matchAll(/^ENV ([A-Z_][A-Z0-9_]*)=(?:"([^"]*)"|(\S*))$/gm))
    environment[name] = quoted ?? bare ?? "";
  return environment;
}

/** The Node flags of the Dockerfile's ENTRYPOINT: those between `node` and `--snapshot-blob`. */
export function imageEntrypointNodeFlags(): readonly string[] {
  const stages = readFileSync("Dockerfile", "utf8").split(/^FROM\s/m);
  const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(stages.at(-1) ?? "")?.[1];
  const words: unknown = JSON.parse(entrypoint ?? "[]");
  if (!Array.isArray(words) || words[0] !== "node" || !words.includes("--snapshot-blob"))
    throw new Error(`the Dockerfile's ENTRYPOINT is not node ... --snapshot-blob FILE --: ${entrypoint}`);
  return words.slice(1, words.indexOf("--snapshot-blob")) as string[];
}

/** Both runtimes the bundle must work on. */
export const RUNTIMES: readonly NodeRuntime[] = [RUNNER_NODE, IMAGE_NODE];

/** The version of the installed `node-image` package; "missing" before `npm ci`. */
export function imageNodeVersion(): string {
  try {
    const manifest: unknown = JSON.parse(readFileSync(resolve(IMAGE_NODE_PACKAGE, "package.json"), "utf8"));
    const version = typeof manifest === "object" && manifest !== null && "version" in manifest ? manifest.version : undefined;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "missing";
  }
}

/** `ENV NODE_OPTIONS` of the Dockerfile's runtime (last) stage: the V8 flags the image runs the plugin with. */
export function imageNodeOptions(): string {
  return imageEnvironment().NODE_OPTIONS ?? "";
}

/** Polls `ok` every 50 ms until it holds; throws, naming `what`, after `timeoutMs`. */
export async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A process's resident memory (VmRSS) in MiB; NaN once it has gone. */
export async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? Number.NaN);
  return kb / 1024;
}

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
  /** The Node binary that runs the bundle (ignored with `command`); the test runner's by default. */
  readonly node?: string;
}

/** Start the built driver with `args` and wait until its unix socket accepts connections. */
export async function startDriver(socketPath: string, args: readonly string[], options: StartOptions = {}): Promise<DriverProcess> {
  const started = spawnDriver(["--endpoint", `unix://${socketPath}`, ...args], options);
  await started.until(() => socketAcceptsConnections(socketPath, 200), `serve ${socketPath}`);
  return started.driver(`unix://${socketPath}`);
}

/**
 * Start the built driver with `args` (the endpoint among them) and wait until
 * its log has a JSON line that `match` accepts: for a TCP endpoint of port 0,
 * the "ready" line names the bound port. Resolves with the process and that line.
 */
export async function startDriverUntilLogged(
  args: readonly string[],
  match: (line: LogLine) => boolean,
  options: StartOptions = {},
): Promise<{ driver: DriverProcess; line: LogLine }> {
  const started = spawnDriver(args, options);
  let found: LogLine | undefined;
  await started.until(async () => {
    found = logLines(started.stderr()).find(match);
    return found !== undefined;
  }, "log the expected line");
  if (found === undefined) throw new Error("unreachable: until() returned without a match");
  const endpoint = typeof found.endpoint === "string" ? found.endpoint : "";
  return { driver: started.driver(endpoint), line: found };
}

function spawnDriver(args: readonly string[], options: StartOptions) {
  const argv = [...(options.command ?? [options.node ?? RUNNER_NODE.node, DRIVER_ENTRY]), ...args];
  const child = spawn(argv[0] ?? RUNNER_NODE.node, argv.slice(1), {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  let err = "";
  let out = "";
  child.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  child.stdout?.on("data", (c: Buffer) => (out += c.toString()));
  // "close" (not "exit"): stdout and stderr are fully read by then.
  const exited = new Promise<number | null>((res) => child.once("close", (code) => res(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  return {
    stderr: () => err,
    async until(ready: () => Promise<boolean>, what: string): Promise<void> {
      while (!(await ready())) {
        if (exitCode !== undefined) throw new Error(`driver exited with ${exitCode} before it did ${what}:\n${err}`);
        if (Date.now() > deadline) {
          child.kill("SIGKILL");
          throw new Error(`driver did not ${what} in time:\n${err}`);
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    },
    driver(endpoint: string): DriverProcess {
      return {
        child,
        endpoint,
        stderr: () => err,
        stdout: () => out,
        exited,
        async stop(signal = "SIGTERM") {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal);
          return exited;
        },
      };
    },
  };
}

/** Run the driver to completion (for --version, --help, bad flags). */
export function runDriver(
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  options: { readonly node?: string; readonly command?: readonly string[] } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const argv = [...(options.command ?? [options.node ?? RUNNER_NODE.node, DRIVER_ENTRY]), ...args];
    const child = spawn(argv[0] ?? RUNNER_NODE.node, argv.slice(1), {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
    child.once("close", (code) => res({ code, stdout, stderr }));
  });
}

/** One line of the driver's JSON log. */
export type LogLine = Readonly<Record<string, unknown>>;

/** The JSON lines of a log (lines that are not JSON objects, such as pretty output, are left out). */
export function logLines(text: string): LogLine[] {
  const lines: LogLine[] = [];
  for (const raw of text.split("\n")) {
    if (!raw.startsWith("{")) continue;
    try {
      const parsed: unknown = JSON.parse(raw);
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) lines.push(parsed as LogLine);
    } catch {
      // a line cut short by a crash: not a log line
    }
  }
  return lines;
}

/** A burst of `calls` Probes over `concurrency` streams of one connection; throws on a Probe that answers not ready. */
export async function probeBurst(clients: CsiClients, calls: number, concurrency = 64): Promise<void> {
  let left = calls;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (left-- > 0) if (!(await clients.identity.probe({})).ready) throw new Error("a Probe answered not ready");
    }),
  );
}
