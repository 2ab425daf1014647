import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { parseCommandLine } from "../../src/cli/options.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { CsiServer } from "../../src/csi/server.js";
import { LOCAL_DRIVER_NAME, type Config } from "../../src/config.js";
import { silentLogger } from "../../src/log/logger.js";
import { createPlugin, type Plugin } from "../../src/plugin.js";
import { VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";

export const NODE_ID = "test-node";
/** The local backend's own default name. */
export const DRIVER = LOCAL_DRIVER_NAME;
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** The real controller (local backend) behind the real gRPC stack, on a unix socket under `dir`. */
export interface ControllerHarness {
  readonly config: Config;
  readonly dataDir: string;
  readonly clients: CsiClients;
  readonly plugin: Plugin;
  stop(): Promise<void>;
}

export function controllerConfig(dir: string, flags: readonly string[] = [], dataDir = join(dir, "data")): Config {
  return parseCommandLine(
    [
      "--backend",
      "local",
      "--mode",
      "controller",
      "--endpoint",
      `unix://${join(dir, "csi.sock")}`,
      "--data-dir",
      dataDir,
      "--node-id",
      NODE_ID,
      ...flags,
    ],
    {},
    "test",
  ).config;
}

export async function startController(dir: string, flags: readonly string[] = []): Promise<ControllerHarness> {
  const config = controllerConfig(dir, flags);
  const plugin = await createPlugin(config, silentLogger);
  let server: CsiServer;
  try {
    server = await CsiServer.start({
      endpoint: config.endpoint,
      socketMode: 0o600,
      log: silentLogger,
      routes: (router) => plugin.routes(router),
      shutdownTimeoutMs: 5_000,
    });
  } catch (err) {
    await plugin.close();
    throw err;
  }
  const clients = connectCsi(`unix://${join(dir, "csi.sock")}`);
  let stopped = false;
  return {
    config,
    dataDir: config.local.dataDir,
    clients,
    plugin,
    async stop() {
      if (stopped) return;
      stopped = true;
      clients.close();
      await server.shutdown();
      await plugin.close();
    },
  };
}

export function mountCapability(fsType = "", mode = Mode.SINGLE_NODE_WRITER) {
  return { accessType: { case: "mount" as const, value: { fsType, mountFlags: [] } }, accessMode: { mode } };
}

export function blockCapability(mode = Mode.SINGLE_NODE_WRITER) {
  return { accessType: { case: "block" as const, value: {} }, accessMode: { mode } };
}

export { Code, Mode };
export { expectCode } from "../support/expect-code.js";
