import type { CsiServer } from "../csi/server.js";
import { formatEndpoint } from "../util/endpoint.js";
import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";
import type { Plugin } from "../plugin.js";
import { VERSION } from "../version.js";
import type { DebugServer } from "./debug-server.js";
import { HEAP_TRIM_DEFAULTS, startHeapTrimmer } from "./heap-trim.js";
import type { PrometheusMetrics } from "./prometheus.js";
import { FlagError, usage } from "./flags.js";
import { describeConfig, FLAGS, parseCommandLine, PROGRAM } from "./options.js";
import { releaseAfterStart } from "./v8-flags.js";

const QUIET_METHODS = new Set(["/csi.v1.Identity/Probe"]);

/** What runs once start-up has succeeded; stopped in reverse order. */
interface RunningDriver {
  readonly server: CsiServer;
  readonly plugin: Plugin;
  readonly debug: DebugServer | undefined;
}

async function main(argv: readonly string[]): Promise<number> {
  let command;
  try {
    command = parseCommandLine(argv, process.env, VERSION);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`${PROGRAM}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (command.help) {
    process.stdout.write(`${usage(PROGRAM, FLAGS)}\n`);
    return 0;
  }
  if (command.version) {
    process.stdout.write(`${PROGRAM} ${VERSION}\n`);
    return 0;
  }
  const { config } = command;
  // The rest is loaded once the command line is known to be good: --help,
  // --version and a bad flag answer at once.
  const { createLogger } = await import("../log/logger.js");
  const log = await createLogger({ level: config.logLevel, format: config.logFormat });
  installCrashLogging(log);
  // From here on a SIGTERM or SIGINT stops the driver gracefully, even one that
  // arrives while it starts: the default action would kill it with its socket
  // left behind (the socket accepts connections before start-up has finished).
  const stopSignal = watchStopSignals(log);
  log.info({ version: VERSION, config: describeConfig(config) }, "starting");

  const driver = await startDriver(config, log);
  if (driver === undefined) return 1;
  releaseAfterStart();
  // From now on a quiet plugin gives back what a burst of calls grew its heap by (heap-trim.ts).
  const heapTrimmer = startHeapTrimmer({ ...HEAP_TRIM_DEFAULTS, log });
  const endpoint = formatEndpoint(driver.server.endpoint);
  log.info(
    { endpoint, mode: config.mode, backend: config.backend, driver: config.driverName },
    `ready: CSI ${config.mode} plugin on ${endpoint}; check it with: npm run conformance -- --endpoint ${endpoint}`,
  );
  const signal = await stopSignal;
  log.info({ signal }, "shutting down");
  heapTrimmer.stop();
  return stopDriver(driver).then(
    () => 0,
    (err: unknown) => {
      log.error({ err: errorMessage(err) }, "error during shutdown");
      return 1;
    },
  );
}

/**
 * Assemble the plugin, then start the debug server (if asked for) and the CSI
 * server. A failure is logged and whatever had started is released again;
 * undefined then.
 */
async function startDriver(config: Config, log: Logger): Promise<RunningDriver | undefined> {
  const [{ CsiServer }, { createPlugin }] = await Promise.all([import("../csi/server.js"), import("../plugin.js")]);
  let plugin: Plugin;
  let metrics: PrometheusMetrics | undefined;
  try {
    // Metrics exist only with a debug server to serve them: prom-client is loaded for nothing else.
    if (config.debugAddr !== "") metrics = await (await import("./prometheus.js")).createPrometheusMetrics(config.driverName);
    plugin = await createPlugin(config, log, metrics?.driver);
  } catch (err) {
    log.fatal({ err: errorMessage(err) }, "cannot start");
    return undefined;
  }
  let debug: DebugServer | undefined;
  try {
    // node:http is loaded only for a debug server (it costs a node plugin about 30 ms of start-up on Node 22).
    if (metrics) debug = await (await import("./debug-server.js")).startDebugServer(config.debugAddr, plugin.readiness, metrics, log);
    const server = await CsiServer.start({
      endpoint: config.endpoint,
      socketMode: config.socketMode,
      log,
      routes: (router) => plugin.routes(router),
      observer: metrics?.calls,
      quietMethods: QUIET_METHODS,
      shutdownTimeoutMs: config.shutdownTimeoutMs,
    });
    return { server, plugin, debug };
  } catch (err) {
    log.fatal({ err: errorMessage(err) }, "cannot start");
    await plugin.close();
    await debug?.close();
    return undefined;
  }
}

/** Resolves with the first SIGTERM or SIGINT from now on; a second one exits at once, whatever is under way. */
function watchStopSignals(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (!received) {
        received = true;
        resolve(signal);
        return;
      }
      log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/** Graceful stop: the CSI server (calls in flight get --shutdown-timeout), then the plugin and the debug server. */
async function stopDriver({ server, plugin, debug }: RunningDriver): Promise<void> {
  await server.shutdown();
  await plugin.close();
  await debug?.close();
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function installCrashLogging(log: Logger): void {
  process.on("uncaughtException", (err) => {
    log.fatal({ err: err.message, stack: err.stack }, "uncaught exception");
    process.exit(70);
  });
  process.on("unhandledRejection", (reason) => {
    log.fatal({ err: errorMessage(reason), stack: reason instanceof Error ? reason.stack : undefined }, "unhandled rejection");
    process.exit(70);
  });
}

/** Run the plugin with the command line's arguments (without node and the script) and exit with its status. */
export function runMain(argv: readonly string[]): void {
  main(argv).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${PROGRAM}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}
