import { connect as http2Connect, constants as h2 } from "node:http2";
import { connect as netConnect } from "node:net";

export interface RawAnswer {
  /** grpc-status from the trailers (or trailers-only headers); undefined when the stream ended without one. */
  readonly grpcStatus: number | undefined;
  /** How the exchange ended when no status came: the stream error, or "timeout". */
  readonly failure?: string;
}

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, the bytes. */
export function grpcFrame(message: Uint8Array, compressed = false): Buffer {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt8(compressed ? 1 : 0, 0);
  frame.writeUInt32BE(message.length, 1);
  Buffer.from(message).copy(frame, 5);
  return frame;
}

/**
 * One gRPC request over plain HTTP/2 on a unix socket whose body is exactly
 * `body` (a well-formed frame around garbage, or garbage framing), as a broken
 * or hostile client would send it. Resolves with the status the server sent.
 */
export async function rawGrpcRequest(socketPath: string, path: string, body: Uint8Array, timeoutMs: number): Promise<RawAnswer> {
  const session = http2Connect("http://localhost", { createConnection: () => netConnect(socketPath) });
  session.on("error", () => undefined);
  try {
    const req = session.request({
      [h2.HTTP2_HEADER_METHOD]: "POST",
      [h2.HTTP2_HEADER_PATH]: path,
      [h2.HTTP2_HEADER_AUTHORITY]: "localhost",
      [h2.HTTP2_HEADER_SCHEME]: "http",
      "content-type": "application/grpc",
      te: "trailers",
    });
    let status: string | undefined;
    const note = (headers: Record<string, unknown>) => {
      const value = headers["grpc-status"];
      if (value !== undefined) status = String(value);
    };
    req.on("response", note);
    req.on("trailers", note);
    req.on("data", () => undefined);
    req.end(Buffer.from(body));
    const failure = await new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve("timeout"), timeoutMs);
      req.on("close", () => {
        clearTimeout(timer);
        resolve(undefined);
      });
      req.on("error", (err: Error) => {
        clearTimeout(timer);
        resolve(err.message);
      });
    });
    req.close();
    return { grpcStatus: status === undefined ? undefined : Number(status), ...(failure === undefined ? {} : { failure }) };
  } finally {
    session.destroy();
  }
}
