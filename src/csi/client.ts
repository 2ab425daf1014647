import { connect as netConnect } from "node:net";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { Controller, GroupController, Identity, Node, SnapshotMetadata } from "../gen/csi/v1/csi_pb.js";
import { parseEndpoint } from "./endpoint.js";

export interface CsiClients {
  readonly identity: Client<typeof Identity>;
  readonly controller: Client<typeof Controller>;
  readonly node: Client<typeof Node>;
  readonly groupController: Client<typeof GroupController>;
  readonly snapshotMetadata: Client<typeof SnapshotMetadata>;
  /** The one connection the clients share, for calls chosen at run time by their method descriptor. */
  readonly transport: Transport;
  /** Close the connection. */
  close(): void;
}

export interface CsiClientOptions {
  /** Host part of `:authority`; "localhost" for unix sockets, as Go clients send. */
  authority?: string;
  interceptors?: Interceptor[];
}

/** gRPC clients for every CSI service of one endpoint (unix:///path or tcp://host:port). */
export function connectCsi(endpointText: string, options: CsiClientOptions = {}): CsiClients {
  const endpoint = parseEndpoint(endpointText);
  const authority = options.authority ?? (endpoint.kind === "unix" ? "localhost" : `${endpoint.host}:${endpoint.port}`);
  const baseUrl = `http://${authority}`;
  // As grpc-js does, the session's memory is not capped: Node's default (10 MB, counting data the peer
  // refused) would break the whole connection after a few large requests, where a Go client sails on.
  const maxSessionMemory = Number.MAX_SAFE_INTEGER;
  const sessionManager = new Http2SessionManager(
    baseUrl,
    { idleConnectionTimeoutMs: 60_000 },
    endpoint.kind === "unix"
      ? { createConnection: () => netConnect(endpoint.path), maxSessionMemory }
      : { createConnection: () => netConnect(endpoint.port, endpoint.host), maxSessionMemory },
  );
  const transport = createGrpcTransport({ baseUrl, sessionManager, interceptors: options.interceptors ?? [] });
  return {
    identity: createClient(Identity, transport),
    controller: createClient(Controller, transport),
    node: createClient(Node, transport),
    groupController: createClient(GroupController, transport),
    snapshotMetadata: createClient(SnapshotMetadata, transport),
    transport,
    close: () => sessionManager.abort(),
  };
}
