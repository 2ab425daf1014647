import { createServer, type Http2Server, type ServerHttp2Session } from "node:http2";
import { chmod, lstat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, type ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Logger } from "../log/logger.js";
import { Unavailable } from "./errors.js";
import { formatEndpoint, type Endpoint } from "./endpoint.js";
import { prepareSocketPath, removeOwnSocket } from "./unix-socket.js";

export interface CsiServerOptions {
  endpoint: Endpoint;
  /** File mode of a unix socket, e.g. 0o660. */
  socketMode: number;
  log: Logger;
  routes: (router: ConnectRouter) => void;
  interceptors: Interceptor[];
  /** How long in-flight calls may run after shutdown begins before they are cancelled. */
  shutdownTimeoutMs: number;
}

/**
 * The gRPC server for the CSI services: HTTP/2 cleartext on a unix socket or a
 * TCP port, as kubelet and the kubernetes-csi sidecars dial it. It accepts
 * whatever `:authority` a client sends (Go clients send the socket path or
 * "localhost"), answers unknown methods with UNIMPLEMENTED, and shuts down
 * gracefully: no new calls, in-flight calls finish within a bound, socket removed.
 */
export class CsiServer {
  readonly #options: CsiServerOptions;
  readonly #server: Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #shutdown = new AbortController();
  #socketInode: number | bigint | undefined;
  #closing: Promise<void> | undefined;
  #endpoint: Endpoint;

  private constructor(options: CsiServerOptions) {
    this.#options = options;
    this.#endpoint = options.endpoint;
    const handler = connectNodeAdapter({
      routes: options.routes,
      interceptors: options.interceptors,
      grpc: true,
      grpcWeb: false,
      connect: false,
      shutdownSignal: this.#shutdown.signal,
      fallback: unimplementedFallback,
    });
    this.#server = createServer(handler);
    this.#server.on("session", (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      session.on("error", (err) => options.log.debug({ err: err.message }, "client connection error"));
    });
  }

  static async start(options: CsiServerOptions): Promise<CsiServer> {
    const server = new CsiServer(options);
    await server.#listen();
    return server;
  }

  /** The endpoint actually served (a TCP port of 0 is replaced by the bound port). */
  get endpoint(): Endpoint {
    return this.#endpoint;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  async #listen(): Promise<void> {
    const { endpoint } = this.#options;
    if (endpoint.kind === "unix") await prepareSocketPath(endpoint.path);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once("error", onError);
      const done = () => {
        this.#server.off("error", onError);
        resolve();
      };
      if (endpoint.kind === "unix") this.#server.listen(endpoint.path, done);
      else this.#server.listen({ host: endpoint.host, port: endpoint.port }, done);
    });
    this.#server.on("error", (err) => this.#options.log.error({ err: err.message }, "server error"));
    if (endpoint.kind === "unix") {
      await chmod(endpoint.path, this.#options.socketMode);
      this.#socketInode = (await lstat(endpoint.path)).ino;
    } else {
      const address = this.#server.address() as AddressInfo;
      this.#endpoint = { kind: "tcp", host: endpoint.host, port: address.port };
    }
    this.#options.log.info({ endpoint: formatEndpoint(this.#endpoint) }, "serving CSI");
  }

  /**
   * Stop accepting connections, let in-flight calls finish for up to
   * `shutdownTimeoutMs`, then cancel what is left and close every connection.
   */
  shutdown(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const { log, shutdownTimeoutMs, endpoint } = this.#options;
    const serverClosed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    const drained = await Promise.race([serverClosed.then(() => true), delay(shutdownTimeoutMs).then(() => false)]);
    if (!drained) {
      log.warn({ timeoutMs: shutdownTimeoutMs, connections: this.#sessions.size }, "in-flight calls did not finish in time; cancelling them");
      this.#shutdown.abort(Unavailable("the driver is shutting down"));
      await Promise.race([serverClosed, delay(1000)]);
      for (const session of this.#sessions) session.destroy();
      await serverClosed;
    }
    if (endpoint.kind === "unix") await removeOwnSocket(endpoint.path, this.#socketInode);
    log.info("server stopped");
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** Unknown service or method: a gRPC trailers-only UNIMPLEMENTED response rather than an HTTP 404. */
const unimplementedFallback: NonNullable<ConnectNodeAdapterOptions["fallback"]> = (req, res) => {
  const path = req.url ?? "";
  const message = encodeURIComponent(`unknown method ${path}`);
  if ("stream" in req && !req.stream.headersSent) {
    req.stream.respond({ ":status": 200, "content-type": "application/grpc", "grpc-status": "12", "grpc-message": message }, { endStream: true });
    return;
  }
  res.writeHead(200, { "content-type": "application/grpc", "grpc-status": "12", "grpc-message": message });
  res.end();
};
