import { createServer as createHttp2Server, type Http2Server, type ServerHttp2Session } from "node:http2";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { chmod, lstat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { ConnectRouter, Interceptor } from "@connectrpc/connect";
import { connectNodeAdapter, type ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { Logger } from "../log/logger.js";
import { Unavailable } from "./errors.js";
import { formatEndpoint, type Endpoint } from "./endpoint.js";
import { acceptWithAuthorityRepair } from "./legacy-authority.js";
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

type NodeHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;

/**
 * The gRPC server for the CSI services: HTTP/2 cleartext on a unix socket or a
 * TCP port, as kubelet and the kubernetes-csi sidecars dial it. It accepts
 * whatever `:authority` a client sends (Go clients send "localhost" or, when
 * older, the socket path), answers unknown methods with UNIMPLEMENTED, and
 * shuts down gracefully: no new calls, in-flight calls finish within a bound,
 * socket removed.
 */
export class CsiServer {
  readonly #options: CsiServerOptions;
  readonly #listener: NetServer;
  readonly #http2: Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #connections = new Set<Socket>();
  /** Connections handed to the HTTP/2 server (directly or through the authority relay). */
  readonly #delivered = new WeakSet<Socket>();
  readonly #shutdown = new AbortController();
  #socketInode: number | bigint | undefined;
  #closing: Promise<void> | undefined;
  #endpoint: Endpoint;

  private constructor(options: CsiServerOptions) {
    this.#options = options;
    this.#endpoint = options.endpoint;
    const { log } = options;
    const connectHandler = connectNodeAdapter({
      routes: options.routes,
      interceptors: options.interceptors,
      grpc: true,
      grpcWeb: false,
      connect: false,
      shutdownSignal: this.#shutdown.signal,
      fallback: unimplementedFallback,
    });
    const handler: NodeHandler = (req, res) => {
      try {
        // The RPC layer builds a URL from :authority; a socket path (even
        // percent-encoded) is not a host name.
        if ("authority" in req && !HOST_AUTHORITY.test(req.authority)) {
          Object.defineProperty(req, "authority", { value: "localhost", configurable: true });
        }
        connectHandler(req, res);
      } catch (err) {
        log.error({ err: err instanceof Error ? err.message : String(err), path: req.url }, "cannot handle request");
        respondStatus(req, res, 13, "internal error handling the request");
      }
    };
    this.#http2 = createHttp2Server(handler);
    this.#http2.on("session", (session: ServerHttp2Session) => {
      this.#sessions.add(session);
      session.once("close", () => this.#sessions.delete(session));
      session.on("error", (err) => log.debug({ err: err.message }, "client connection error"));
    });

    const unix = options.endpoint.kind === "unix";
    this.#listener = createNetServer((socket) => {
      this.#connections.add(socket);
      socket.once("close", () => this.#connections.delete(socket));
      const deliver = (stream: Socket | import("node:stream").Duplex) => {
        this.#delivered.add(socket);
        this.#http2.emit("connection", stream);
      };
      if (unix) acceptWithAuthorityRepair(socket, { deliver, log });
      else deliver(socket);
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
      this.#listener.once("error", onError);
      const done = () => {
        this.#listener.off("error", onError);
        resolve();
      };
      if (endpoint.kind === "unix") this.#listener.listen(endpoint.path, done);
      else this.#listener.listen({ host: endpoint.host, port: endpoint.port }, done);
    });
    this.#listener.on("error", (err) => this.#options.log.error({ err: err.message }, "listener error"));
    if (endpoint.kind === "unix") {
      await chmod(endpoint.path, this.#options.socketMode);
      this.#socketInode = (await lstat(endpoint.path)).ino;
    } else {
      const address = this.#listener.address() as AddressInfo;
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
    const listenerClosed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    for (const session of this.#sessions) session.close();
    // Connections that never started a session (still being read) have no calls to finish.
    for (const socket of this.#connections) if (!this.#delivered.has(socket)) socket.destroy();
    const drained = await this.#waitForSessions(shutdownTimeoutMs);
    if (!drained) {
      log.warn({ timeoutMs: shutdownTimeoutMs, connections: this.#sessions.size }, "in-flight calls did not finish in time; cancelling them");
      this.#shutdown.abort(Unavailable("the driver is shutting down"));
      if (!(await this.#waitForSessions(1000))) for (const session of this.#sessions) session.destroy();
    }
    for (const socket of this.#connections) socket.destroy();
    await listenerClosed;
    if (endpoint.kind === "unix") await removeOwnSocket(endpoint.path, this.#socketInode);
    log.info("server stopped");
  }

  async #waitForSessions(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#sessions.size > 0) {
      if (Date.now() >= deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, 20).unref());
    }
    return true;
  }
}

const HOST_AUTHORITY = /^[A-Za-z0-9._~-]*(?::\d+)?$|^\[[0-9A-Fa-f:.]+\](?::\d+)?$/;

/** A gRPC trailers-only response carrying just a status. */
function respondStatus(req: Parameters<NodeHandler>[0], res: Parameters<NodeHandler>[1], code: number, text: string): void {
  const headers = { "content-type": "application/grpc", "grpc-status": String(code), "grpc-message": encodeURIComponent(text) };
  if ("stream" in req) {
    if (!req.stream.headersSent && !req.stream.destroyed) req.stream.respond({ ":status": 200, ...headers }, { endStream: true });
    return;
  }
  res.writeHead(200, headers);
  res.end();
}

/** Unknown service or method: a gRPC UNIMPLEMENTED status rather than an HTTP 404. */
const unimplementedFallback: NodeHandler = (req, res) => {
  respondStatus(req, res, 12, `unknown method ${req.url ?? ""}`);
};
