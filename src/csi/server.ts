import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Http2Server, Http2Session, ServerHttp2Stream } from "node:http2";
import type { Duplex } from "node:stream";
import { chmod, lstat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import type { DescService } from "@bufbuild/protobuf";
import type { Logger } from "../log/logger.js";
import { methodRunner, type ActiveCalls, type CallObserver, type MethodRunner, type UntypedHandler } from "./call-handler.js";
import { Unavailable } from "../errors.js";
import { formatEndpoint, type Endpoint } from "../util/endpoint.js";
import { ArrivingRequests } from "./arriving-requests.js";
import { serveStream, type StreamLimits } from "./grpc-stream.js";
import { acceptWithAuthorityRepair } from "./legacy-authority.js";
import type { Router, ServiceHandlers } from "../driver/service.js";
import {
  KEEPALIVE_TIME_MS,
  KEEPALIVE_TIMEOUT_MS,
  MAX_CONCURRENT_STREAMS,
  MAX_CONNECTIONS,
  MAX_RECEIVE_MESSAGE_BYTES,
  MAX_SEND_MESSAGE_BYTES,
  MAX_SESSION_MEMORY_MIB,
  MAX_STATUS_MESSAGE_BYTES,
  MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION,
  UNFINISHED_REQUEST_TIMEOUT_MS,
} from "./transport-limits.js";
import { prepareSocketPath, removeOwnSocket } from "./unix-socket.js";

export interface CsiServerOptions {
  endpoint: Endpoint;
  /** File mode of a unix socket, e.g. 0o660. */
  socketMode: number;
  log: Logger;
  /** Registers the services to serve. */
  routes: (router: Router) => void;
  /** How long in-flight calls may run after shutdown begins before they are cancelled. */
  shutdownTimeoutMs: number;
  observer?: CallObserver;
  /** Methods whose successful calls are logged at debug level (health checks). */
  quietMethods?: ReadonlySet<string>;
  /**
   * Close a connection that has had no call for this long. Off by default:
   * the kubernetes-csi sidecars exit when their connection is closed.
   */
  idleTimeoutMs?: number;
  /** Silence on a connection before a keepalive PING, and how long its answer may take (default KEEPALIVE_TIME_MS, KEEPALIVE_TIMEOUT_MS). */
  keepalive?: { readonly timeMs: number; readonly timeoutMs: number };
  /** How long a request may take to arrive whole (default UNFINISHED_REQUEST_TIMEOUT_MS). */
  unfinishedRequestTimeoutMs?: number;
}

/**
 * The gRPC server for the CSI services: HTTP/2 cleartext on a unix socket or a
 * TCP port, as kubelet and the kubernetes-csi sidecars dial it, on Node's own
 * HTTP/2 (nghttp2) with no gRPC library. CSI needs only unary and
 * server-streaming calls of small messages, which grpc-stream.ts serves in a
 * few hundred lines; a general gRPC library cost the node plugin, which runs on
 * every node, twice the CPU per call and a fifth more memory and start-up time
 * (bench/RESULTS.md, "Against the runtime's floor").
 *
 * This class owns the socket's life (stale socket removal, refusal when another
 * process serves it, mode, removal on exit), accepts legacy clients that send
 * the socket path as `:authority`, and keeps each connection bounded
 * (docs/transport.md): limits on connections, streams, session memory and
 * message sizes, keepalive, and an optional idle timeout. Unknown services and
 * methods answer UNIMPLEMENTED. Shutdown is graceful: no new connections, in-flight
 * calls finish within a bound, then what is left is cancelled.
 */
export class CsiServer {
  readonly #options: CsiServerOptions;
  readonly #listener: NetServer;
  /** node:http2's server: made as soon as the socket listens (`start`), before any connection is handed over. */
  #http2: Http2Server | undefined;
  readonly #makeHttp2: () => Http2Server;
  readonly #methods = new Map<string, MethodRunner>();
  readonly #connections = new Set<Socket>();
  /** Connections handed to the HTTP/2 server (directly or through the authority relay). */
  readonly #delivered = new WeakSet<Socket>();
  readonly #sessions = new Set<Http2Session>();
  readonly #active: ActiveCalls = new Set();
  readonly #arriving: ArrivingRequests;
  #socketInode: number | bigint | undefined;
  #closing: Promise<void> | undefined;
  #endpoint: Endpoint;

  private constructor(options: CsiServerOptions) {
    this.#options = options;
    this.#endpoint = options.endpoint;
    const { log } = options;
    const middleware = {
      log,
      observer: options.observer,
      quietMethods: options.quietMethods,
      maxResponseBytes: MAX_SEND_MESSAGE_BYTES,
    };
    const router: Router = {
      service: <S extends DescService>(service: S, handlers: ServiceHandlers<S>) => {
        const byName = handlers as Record<string, UntypedHandler | undefined>;
        for (const method of service.methods) {
          this.#methods.set(
            `/${service.typeName}/${method.name}`,
            methodRunner(method, byName[method.localName], middleware, this.#active),
          );
        }
      },
    };
    options.routes(router);

    const limits: StreamLimits = {
      maxRequestBytes: MAX_RECEIVE_MESSAGE_BYTES,
      maxUnfinishedBytesPerConnection: MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION,
      maxStatusMessageBytes: MAX_STATUS_MESSAGE_BYTES,
    };
    const arriving = new ArrivingRequests(options.unfinishedRequestTimeoutMs ?? UNFINISHED_REQUEST_TIMEOUT_MS);
    this.#arriving = arriving;
    const lookup = (path: string) => this.#methods.get(path);
    // node:http2 is loaded once the socket listens, not with this module: Node cannot
    // put it in a start-up snapshot (the plugin's holds this module, src/cli/snapshot.ts),
    // and compiling it (from source, then) need not delay the socket clients wait for.
    this.#makeHttp2 = () => {
      const http2 = process.getBuiltinModule("node:http2").createServer({
        settings: { maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
        maxSessionMemory: MAX_SESSION_MEMORY_MIB,
      });
      http2.on("session", (session: Http2Session) => this.#watchSession(session));
      http2.on("stream", (stream: ServerHttp2Stream, headers) => serveStream(stream, headers, lookup, limits, arriving));
      // A session's protocol errors are the client's; the session is closed by nghttp2 and nothing else is affected.
      http2.on("sessionError", () => {});
      return http2;
    };

    // Every connection's start is read before HTTP/2 sees it (legacy-authority.ts),
    // which bounds what a connection can cost before it is an HTTP/2 client.
    this.#listener = createNetServer((socket) => {
      this.#connections.add(socket);
      socket.once("close", () => this.#connections.delete(socket));
      const deliver = (stream: Socket | Duplex) => {
        this.#delivered.add(socket);
        this.#http2 ??= this.#makeHttp2();
        this.#http2.emit("connection", stream);
      };
      acceptWithAuthorityRepair(socket, { deliver, log });
    });
    this.#listener.maxConnections = MAX_CONNECTIONS;
    let dropsLogged = 0;
    this.#listener.on("drop", () => {
      if (dropsLogged++ % 100 === 0)
        log.warn({ maxConnections: MAX_CONNECTIONS, dropped: dropsLogged }, "too many connections; closing new ones");
    });
  }

  /**
   * Keepalive: after KEEPALIVE_TIME_MS without a frame either way, a PING; a
   * peer that does not answer within KEEPALIVE_TIMEOUT_MS is gone, and its
   * connection is closed. With `idleTimeoutMs`, a connection without a call
   * for that long is closed gracefully (GOAWAY first).
   */
  #watchSession(session: Http2Session): void {
    if (this.#closing !== undefined) {
      session.close();
      return;
    }
    this.#sessions.add(session);
    let unanswered: NodeJS.Timeout | undefined;
    let idle: NodeJS.Timeout | undefined;
    const { timeMs, timeoutMs } = this.#options.keepalive ?? { timeMs: KEEPALIVE_TIME_MS, timeoutMs: KEEPALIVE_TIMEOUT_MS };
    session.setTimeout(timeMs, () => {
      if (unanswered !== undefined || session.destroyed) return;
      unanswered = setTimeout(() => session.destroy(), timeoutMs).unref();
      try {
        session.ping(() => {
          clearTimeout(unanswered);
          unanswered = undefined;
        });
      } catch {
        session.destroy();
      }
    });
    const idleTimeoutMs = this.#options.idleTimeoutMs;
    if (idleTimeoutMs !== undefined) {
      let streams = 0;
      const armIdle = () => {
        idle = setTimeout(() => session.close(), idleTimeoutMs).unref();
      };
      session.on("stream", (stream: ServerHttp2Stream) => {
        streams++;
        clearTimeout(idle);
        stream.once("close", () => {
          if (--streams === 0 && !session.closed) armIdle();
        });
      });
      armIdle();
    }
    session.once("close", () => {
      clearTimeout(unanswered);
      clearTimeout(idle);
      this.#sessions.delete(session);
    });
  }

  static async start(options: CsiServerOptions): Promise<CsiServer> {
    const server = new CsiServer(options);
    await server.#listen();
    server.#http2 ??= server.#makeHttp2();
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
    // Connections still being read have started no call: nothing to finish.
    for (const socket of this.#connections) if (!this.#delivered.has(socket)) socket.destroy();
    // GOAWAY on every connection; each closes once its calls are done.
    for (const session of this.#sessions) session.close();
    const drained = () => this.#sessions.size === 0 || this.#connections.size === 0;
    if (!(await waitFor(drained, shutdownTimeoutMs))) {
      log.warn({ timeoutMs: shutdownTimeoutMs, calls: this.#active.size }, "in-flight calls did not finish in time; cancelling them");
      for (const call of this.#active) call.abort(Unavailable("the driver is shutting down"));
      await waitFor(drained, 1000);
      for (const session of this.#sessions) session.destroy();
    }
    for (const socket of this.#connections) socket.destroy();
    this.#arriving.stop();
    await listenerClosed;
    if (endpoint.kind === "unix") await removeOwnSocket(endpoint.path, this.#socketInode);
    log.info("server stopped");
  }
}

/** Poll `done` until it holds or `timeoutMs` passes; the timer keeps the process alive meanwhile. */
async function waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
