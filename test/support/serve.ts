import { join } from "node:path";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { CsiServer } from "../../src/csi/server.js";
import { callInterceptor } from "../../src/csi/interceptor.js";
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
  routes: (router: ConnectRouter) => void,
  options: { shutdownTimeoutMs?: number; interceptors?: Interceptor[] } = {},
): Promise<ServedRoutes> {
  const path = join(dir, "csi.sock");
  const server = await CsiServer.start({
    endpoint: { kind: "unix", path },
    socketMode: 0o660,
    log,
    routes,
    interceptors: options.interceptors ?? [callInterceptor({ log })],
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
