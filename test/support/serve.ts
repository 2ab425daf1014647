import { join } from "node:path";
import { CsiServer } from "../../src/csi/server.js";
import type { Router } from "../../src/csi/service.js";
import type { CallObserver } from "../../src/csi/call-handler.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import type { Logger } from "../../src/log/logger.js";

export interface ServedRoutes {
  readonly server: CsiServer;
  readonly clients: CsiClients;
  readonly endpoint: string;
  stop(): Promise<void>;
}

/** Serve routes on a unix socket in `dir` behind the production middleware, with clients connected to it. */
export async function serveRoutes(
  dir: string,
  log: Logger,
  routes: (router: Router) => void,
  options: { shutdownTimeoutMs?: number; observer?: CallObserver } = {},
): Promise<ServedRoutes> {
  const path = join(dir, "csi.sock");
  const server = await CsiServer.start({
    endpoint: { kind: "unix", path },
    socketMode: 0o660,
    log,
    routes,
    observer: options.observer,
    shutdownTimeoutMs: options.shutdownTimeoutMs ?? 5_000,
  });
  const endpoint = `unix://${path}`;
  const clients = connectCsi(endpoint);
  return {
    server,
    clients,
    endpoint,
    async stop() {
      clients.close();
      await server.shutdown();
    },
  };
}
