import { VolumeCapability_AccessMode_Mode as Mode } from "../../../src/gen/csi/v1/csi_pb.js";
import { parseCommandLine } from "../../../src/cli/options.js";
import type { Config } from "../../../src/config.js";
import type { CsiClients } from "../../../src/csi/client.js";
import { silentLogger, type Logger } from "../../../src/log/logger.js";
import { createPlugin, type Plugin } from "../../../src/plugin.js";
import { serveRoutes } from "../../support/serve.js";
import type { DoSimulator } from "../../fixtures/do-simulator/simulator.js";

export interface RunningDriver {
  readonly config: Config;
  readonly plugin: Plugin;
  readonly clients: CsiClients;
  stop(): Promise<void>;
}

/** The whole driver (createPlugin behind the production gRPC server) for these flags, on a socket in `dir`. */
export async function startDriver(dir: string, args: readonly string[], log: Logger = silentLogger): Promise<RunningDriver> {
  const { config } = parseCommandLine(args, {}, "test");
  const plugin = await createPlugin(config, log);
  const served = await serveRoutes(dir, log, (router) => plugin.routes(router));
  return {
    config,
    plugin,
    clients: served.clients,
    async stop() {
      await served.stop();
      await plugin.close();
    },
  };
}

/** Flags pointing the driver at the simulator (API, metadata service, by-id links). */
export function simFlags(sim: DoSimulator, byIdDir: string): string[] {
  return ["--url", sim.url, "--metadata-url", sim.metadataUrl, "--by-id-dir", byIdDir];
}

export function mountCapability(fsType = "ext4", mode: Mode = Mode.SINGLE_NODE_WRITER) {
  return { accessType: { case: "mount" as const, value: { fsType, mountFlags: [] } }, accessMode: { mode } };
}

export function blockCapability(mode: Mode = Mode.SINGLE_NODE_WRITER) {
  return { accessType: { case: "block" as const, value: {} }, accessMode: { mode } };
}

export { Mode };
