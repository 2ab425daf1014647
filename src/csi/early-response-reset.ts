import { Server as NetServer } from "node:net";
import { constants as http2, type Http2Server, type ServerHttp2Stream } from "node:http2";
import type { Server as GrpcServer } from "@grpc/grpc-js";

/**
 * Closes, with RST_STREAM NO_ERROR, the HTTP/2 stream of every call answered
 * before its client finished sending the request (RFC 9113 §8.1 allows it;
 * grpc-go's server does the same). grpc-js answers such calls (a request
 * above the receive limit, an unknown method, an unfinished request) but
 * leaves the stream half-closed until the client ends it. A client that never
 * does (connect-node stops writing a request once its response has arrived)
 * keeps the stream counted against the connection's MAX_CONCURRENT_STREAMS,
 * and after 32 such calls every later call on that connection waits for a
 * stream that never frees.
 */
export function resetStreamsAnsweredEarly(server: Http2Server): void {
  server.on("stream", (stream: ServerHttp2Stream) => {
    stream.once("finish", () => {
      // Only once the status went out: in the response headers (trailers-only) or in trailers. The reset
      // waits a moment: a client still writing the request when the answer arrives (a flood of streams
      // over a full connection window) then reads the answer before its stream is reset, and the
      // streams it queued behind the refused ones still start.
      // A stream the client cancelled before any answer has sent no headers at all.
      const answered = stream.sentHeaders?.["grpc-status"] !== undefined || stream.sentTrailers?.["grpc-status"] !== undefined;
      if (!answered) return;
      setTimeout(() => {
        if (!stream.closed && !stream.destroyed && stream.state.remoteClose === 0) stream.close(http2.NGHTTP2_NO_ERROR);
      }, 200).unref();
    });
  });
}

/**
 * The HTTP/2 server grpc-js made for a connection injector. grpc-js keeps it in
 * a private map and offers no other way to reach its streams, so this fails
 * loudly when a grpc-js release changes that.
 */
export function injectorHttp2Server(grpc: GrpcServer): Http2Server {
  const servers: unknown = Reflect.get(grpc, "http2Servers");
  const found = servers instanceof Map ? [...servers.keys()].filter(isHttp2Server) : [];
  const [server] = found;
  if (found.length !== 1 || server === undefined) throw new Error("grpc-js no longer exposes the HTTP/2 server of its connection injector");
  return server;
}

function isHttp2Server(value: unknown): value is Http2Server {
  return value instanceof NetServer;
}
