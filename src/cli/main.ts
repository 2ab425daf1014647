import { setFlagsFromString } from "node:v8";
import type { CsiServer } from "../csi/server.js";
import { formatEndpoint } from "../csi/endpoint.js";
import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";
import type { Plugin } from "../plugin.js";
import { VERSION } from "../version.js";
import type { DebugServer } from "./debug-server.js";
import { FlagError, usage } from "./flags.js";
import { describeConfig, FLAGS, parseCommandLine, PROGRAM } from "./options.js";

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
  log.info({ version: VERSION, config: describeConfig(config) }, "starting");

  const driver = await startDriver(config, log);
  if (driver === undefined) return 1;
  setFlagsFromString("--turbofan"); // off during start-up (see bin.ts)
  const endpoint = formatEndpoint(driver.server.endpoint);
  log.info(
    { endpoint, mode: config.mode, backend: config.backend, driver: config.driverName },
    `ready: CSI ${config.mode} plugin on ${endpoint}; check it with: npm run conformance -- --endpoint ${endpoint}`,
  );
  return stopOnSignal(driver, log);
}

/**
 * Assemble the plugin, then start the debug server (if asked for) and the CSI
 * server. A failure is logged and whatever had started is released again;
 * undefined then.
 */
async function startDriver(config: Config, log: Logger): Promise<RunningDriver | undefined> {
  const [{ CsiServer }, { createPlugin }, { startDebugServer }] = await Promise.all([
    import("../csi/server.js"),
    import("../plugin.js"),
    import("./debug-server.js"),
  ]);
  let plugin: Plugin;
  try {
    plugin = await createPlugin(config, log);
  } catch (err) {
    log.fatal({ err: errorMessage(err) }, "cannot start");
    return undefined;
  }
  let debug: DebugServer | undefined;
  try {
    if (config.debugAddr !== "") debug = await startDebugServer(config.debugAddr, plugin.readiness, log);
    const server = await CsiServer.start({
      endpoint: config.endpoint,
      socketMode: config.socketMode,
      log,
      routes: (router) => plugin.routes(router),
      observer: debug?.observer,
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

/**
 * Serve until SIGTERM or SIGINT, then shut down gracefully: the CSI server
 * (calls in flight get --shutdown-timeout), the plugin, the debug server.
 * Resolves the exit code; a second signal exits at once.
 */
function stopOnSignal(driver: RunningDriver, log: Logger): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn({ signal }, "second signal: exiting now");
        resolve(1);
        return;
      }
      stopping = true;
      log.info({ signal }, "shutting down");
      stopDriver(driver).then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, "error during shutdown");
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
}

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

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`${PROGRAM}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
