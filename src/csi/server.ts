import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { chmod, lstat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { create, fromBinary, toBinary, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import {
  type ChannelOptions,
  Server as GrpcServer,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { Logger } from "../log/logger.js";
import { grpcHandler, type ActiveCalls, type CallObserver, type UntypedHandler } from "./call-handler.js";
import { InvalidArgument, Unavailable } from "../errors.js";
import { formatEndpoint, type Endpoint } from "../util/endpoint.js";
import { injectorHttp2Server, resetStreamsAnsweredEarly } from "./early-response-reset.js";
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
  UNFINISHED_REQUEST_TIMEOUT_MS,
} from "./transport-limits.js";
import { boundedStatusMessage } from "./status-size.js";
import { unfinishedRequestTimeout } from "./unfinished-request.js";
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
  /** How long a request may take to arrive whole (default UNFINISHED_REQUEST_TIMEOUT_MS). */
  unfinishedRequestTimeoutMs?: number;
}

/** The grpc-js options that make the transport's limits explicit (see transport-limits.ts for each number). */
function grpcOptions(options: CsiServerOptions): ChannelOptions {
  return {
    "grpc.max_receive_message_length": MAX_RECEIVE_MESSAGE_BYTES,
    "grpc.max_send_message_length": MAX_SEND_MESSAGE_BYTES,
    "grpc.max_concurrent_streams": MAX_CONCURRENT_STREAMS,
    "grpc-node.max_session_memory": MAX_SESSION_MEMORY_MIB,
    "grpc.keepalive_time_ms": KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    ...(options.idleTimeoutMs === undefined ? {} : { "grpc.max_connection_idle_ms": options.idleTimeoutMs }),
  };
}

function bytes(data: Uint8Array): Buffer {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/**
 * Requests whose bytes are not a valid message of their type. grpc-js answers
 * INTERNAL when deserialisation throws, so an undecodable request becomes an
 * empty placeholder that the handler rejects with INVALID_ARGUMENT instead.
 */
const undecodable = new WeakSet<Message>();

function decodeRequest(method: DescMethod, data: Buffer): Message {
  try {
    return fromBinary(method.input, data);
  } catch {
    const placeholder = create(method.input);
    undecodable.add(placeholder);
    return placeholder;
  }
}

function rejectingUndecodable(method: DescMethod, handler: UntypedHandler | undefined): UntypedHandler | undefined {
  if (handler === undefined) return undefined;
  return (request, ctx) => {
    if (undecodable.has(request)) throw InvalidArgument("the request is not a valid %s message", method.input.typeName);
    return handler(request, ctx);
  };
}

/** grpc-js method definitions for a service, with protobuf-es doing the (de)serialisation. */
function definitionOf(service: DescService): ServiceDefinition {
  const definition: Record<string, ServiceDefinition[string]> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: false,
      responseStream: method.methodKind === "server_streaming",
      requestSerialize: (message: Message) => bytes(toBinary(method.input, message)),
      requestDeserialize: (data: Buffer) => decodeRequest(method, data),
      responseSerialize: (message: Message) => bytes(toBinary(method.output, message)),
      responseDeserialize: (data: Buffer) => fromBinary(method.output, data),
    };
  }
  return definition;
}

/**
 * The gRPC server for the CSI services (grpc-js): HTTP/2 cleartext on a unix
 * socket or a TCP port, as kubelet and the kubernetes-csi sidecars dial it.
 * Connections are accepted here and handed to grpc-js, so this class owns the
 * socket's life (stale socket removal, refusal when another process serves it,
 * mode, removal on exit) and can accept legacy clients that send the socket
 * path as `:authority`. Unknown services and methods answer UNIMPLEMENTED.
 * Shutdown is graceful: no new connections, in-flight calls finish within a
 * bound, then what is left is cancelled.
 */
export class CsiServer {
  readonly #options: CsiServerOptions;
  readonly #listener: NetServer;
  readonly #grpc: GrpcServer;
  readonly #connections = new Set<Socket>();
  /** Connections handed to grpc-js (directly or through the authority relay). */
  readonly #delivered = new WeakSet<Socket>();
  readonly #active: ActiveCalls = new Set();
  #socketInode: number | bigint | undefined;
  #closing: Promise<void> | undefined;
  #endpoint: Endpoint;

  private constructor(options: CsiServerOptions) {
    this.#options = options;
    this.#endpoint = options.endpoint;
    const { log } = options;
    this.#grpc = new GrpcServer({
      ...grpcOptions(options),
      interceptors: [
        boundedStatusMessage(MAX_STATUS_MESSAGE_BYTES),
        unfinishedRequestTimeout(options.unfinishedRequestTimeoutMs ?? UNFINISHED_REQUEST_TIMEOUT_MS),
      ],
    });
    const middleware = { log, observer: options.observer, quietMethods: options.quietMethods };
    const router: Router = {
      service: <S extends DescService>(service: S, handlers: ServiceHandlers<S>) => {
        const implementation: UntypedServiceImplementation = {};
        const byName = handlers as Record<string, UntypedHandler | undefined>;
        for (const method of service.methods) {
          implementation[method.localName] = grpcHandler(
            method,
            rejectingUndecodable(method, byName[method.localName]),
            middleware,
            this.#active,
          );
        }
        this.#grpc.addService(definitionOf(service), implementation);
      },
    };
    options.routes(router);
    const injector = this.#grpc.createConnectionInjector(ServerCredentials.createInsecure());
    resetStreamsAnsweredEarly(injectorHttp2Server(this.#grpc));

    // Every connection's start is read before grpc-js sees it (legacy-authority.ts),
    // which bounds what a connection can cost before it is an HTTP/2 client.
    this.#listener = createNetServer((socket) => {
      this.#connections.add(socket);
      socket.once("close", () => this.#connections.delete(socket));
      const deliver = (stream: Socket | Duplex) => {
        this.#delivered.add(socket);
        injector.injectConnection(stream);
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
    // Connections still being read have started no call: nothing to finish.
    for (const socket of this.#connections) if (!this.#delivered.has(socket)) socket.destroy();
    // grpc-js sends GOAWAY and closes each connection once its calls are done.
    let grpcClosed = false;
    this.#grpc.tryShutdown(() => (grpcClosed = true));
    const drained = () => grpcClosed || this.#connections.size === 0;
    if (!(await waitFor(drained, shutdownTimeoutMs))) {
      log.warn({ timeoutMs: shutdownTimeoutMs, calls: this.#active.size }, "in-flight calls did not finish in time; cancelling them");
      for (const controller of this.#active) controller.abort(Unavailable("the driver is shutting down"));
      await waitFor(drained, 1000);
      this.#grpc.forceShutdown();
    }
    for (const socket of this.#connections) socket.destroy();
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
