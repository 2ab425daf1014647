/**
 * Every limit the gRPC transport applies, with the reason for each number, in
 * one place (docs/transport.md explains them for operators).
 *
 * CSI messages are small: the spec caps strings at 128 bytes and maps at
 * 4 KiB, so even a CreateVolume carrying parameters, secrets, mutable
 * parameters, capabilities and a long list of topology segments stays in the
 * tens of KiB. The limits below leave a wide margin over that while keeping
 * what one connection, one stream or one header block can make the process
 * hold small and short-lived.
 */

/**
 * Largest request message accepted. 256 KiB is about ten times the largest
 * request the spec's limits allow in practice (a CreateVolume with every map
 * at 4 KiB and a long list of topology segments). The announced length is
 * checked before anything is held, so a larger message costs nothing and
 * answers RESOURCE_EXHAUSTED. A request is held while it arrives, and all of a
 * connection's together at most MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION.
 */
export const MAX_RECEIVE_MESSAGE_BYTES = 256 * 1024;

/**
 * Largest response message sent: 4 MiB is
 * what Go gRPC clients (kubelet, the sidecars) accept by default, so a larger
 * ListVolumes/ListSnapshots page would be refused by them anyway; paging with
 * max_entries keeps responses below it.
 */
export const MAX_SEND_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Streams one connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
 * A sidecar runs all its calls over one connection with 10 to 100 workers
 * (external-provisioner's default is 100), so 128 lets every one of them run
 * without waiting. The margin matters: Node's HTTP/2 keeps counting a stream
 * until its object is released, a moment after the stream ended, so a client
 * that runs at the limit (grpc-go opens the next stream as soon as a status
 * arrives) sometimes has a new stream refused with ENHANCE_YOUR_CALM on a busy
 * node. It also bounds what the streams' flow-control windows can make a
 * connection buffer (128 × 64 KiB); the requests themselves are bounded by
 * MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION.
 */
export const MAX_CONCURRENT_STREAMS = 128;

/**
 * Bytes one connection's requests may hold while they arrive (a request is
 * held from its first byte to its end): 32 requests of the largest size. A
 * request that would take the connection past it is answered
 * RESOURCE_EXHAUSTED at once; CSI requests are a few KiB, so only a client
 * sending many near-limit requests at once meets it.
 */
export const MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION = 32 * 256 * 1024;

/**
 * nghttp2's own bookkeeping per connection (HPACK tables, queued frames), in
 * MiB (Node's maxSessionMemory): its default, set here so that it is explicit,
 * and far above a CSI client's use.
 */
export const MAX_SESSION_MEMORY_MIB = 10;

/**
 * Connections served at once. A node has kubelet, node-driver-registrar and a
 * liveness probe; a controller has four or five sidecars, each on one
 * long-lived connection; kubelet opens one per call. 64 is far above that
 * and bounds what all connections together can hold to 64 × 8 MiB of
 * unfinished requests in the worst case; further connections are closed on
 * accept.
 */
export const MAX_CONNECTIONS = 64;

/**
 * How long a request may take to arrive completely, from its headers to the
 * end of its message. A CSI request is one small message that every client
 * sends at once; a call still unfinished after this is answered with
 * RESOURCE_EXHAUSTED, so its handler never runs and what the client still
 * sends is dropped. The caller's own deadline (grpc-timeout) still bounds the
 * call as a whole.
 */
export const UNFINISHED_REQUEST_TIMEOUT_MS = 10_000;

/**
 * Keepalive: a PING after this much silence on a connection, and the
 * connection closed when the PING is not answered in time. It finds peers
 * that vanished without closing (a TCP endpoint across a network). Idle but
 * live connections are kept by default: the kubernetes-csi sidecars exit when
 * their connection to the driver is lost (csi-lib-utils ExitOnConnectionLoss),
 * so closing an idle sidecar connection would restart the sidecar.
 */
export const KEEPALIVE_TIME_MS = 5 * 60_000;
export const KEEPALIVE_TIMEOUT_MS = 20_000;

/** HTTP/2 limits nghttp2 applies by default, which the legacy `:authority` relay applies before it. */
export const HTTP2 = {
  /** SETTINGS_MAX_FRAME_SIZE's default; neither side of the relay ever raises it. */
  maxFramePayload: 16_384,
  /** nghttp2's default cap on CONTINUATION frames after a HEADERS frame. */
  maxContinuations: 8,
  /** SETTINGS_MAX_HEADER_LIST_SIZE's default under Node: decoded bytes, 32 more per field. */
  maxHeaderListSize: 65_535,
} as const;

/**
 * Bytes the relay holds while it reads a connection's start (up to its first
 * request). Before that request is served the client can only have sent the
 * preface, settings, header blocks (each at most 9 frames) and DATA within the
 * 64 KiB initial flow-control window, so 256 KiB covers every real client.
 */
export const MAX_SNIFF_BYTES = 256 * 1024;

/** How long a new unix-socket connection has to acknowledge the server's settings. */
export const SNIFF_TIMEOUT_MS = 5_000;

/**
 * Largest status message sent, percent-encoded as grpc-message carries it.
 * Node clients accept header lists of 64 KiB, so 8 KiB leaves room for every
 * other header while no message a caller could use is cut.
 */
export const MAX_STATUS_MESSAGE_BYTES = 8 * 1024;
