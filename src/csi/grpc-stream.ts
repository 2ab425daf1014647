/**
 * One gRPC call on one HTTP/2 stream: the request's headers are checked, its
 * one message is read within the receive limit and the unfinished-request
 * bound, the method runs, and the answer goes out as a response with trailers
 * (or, for a call refused before any message, trailers only). Every way a
 * stream can end early is handled here: the caller resetting it (the call is
 * cancelled), a request that never finishes (RESOURCE_EXHAUSTED after the
 * bound), and a client that keeps its side open after the answer (the stream
 * is reset with NO_ERROR right after the status, as grpc-go's server does, so
 * it stops counting against the connection's concurrent streams).
 */
import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { Code, type CsiError } from "../errors.js";
import type { ArrivingRequest, ArrivingRequests } from "./arriving-requests.js";
import type { CallResponder, MethodRunner, RunningCall } from "./call-handler.js";
import {
  deadlineFrom,
  encodedStatusMessage,
  framedMessage,
  GRPC_CONTENT_TYPE,
  IDENTITY,
  RequestMessageReader,
  WireError,
} from "./grpc-wire.js";

// node:http2's constants of the same names. The module loads node:http2 only
// through the server (server.ts), once it listens (the start-up snapshot holds
// this module, and Node cannot put node:http2 in a snapshot).
const HTTP_STATUS_METHOD_NOT_ALLOWED = 405;
const HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE = 415;
const NGHTTP2_NO_ERROR = 0;

export interface StreamLimits {
  readonly maxRequestBytes: number;
  /** Bytes all of a connection's requests may hold while they arrive. */
  readonly maxUnfinishedBytesPerConnection: number;
  readonly maxStatusMessageBytes: number;
}

/** Serves the call on `stream`; `lookup` finds the method a path names. */
export function serveStream(
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  lookup: (path: string) => MethodRunner | undefined,
  limits: StreamLimits,
  arriving: ArrivingRequests,
): void {
  new GrpcStream(stream, limits, arriving).serve(headers, lookup);
}

/**
 * The call a stream carries, kept on the stream so that one listener function
 * per event serves every stream (no closures per call: a node plugin answers
 * a Probe every few seconds for the life of the node).
 */
const CALL = Symbol("grpc call");
/** Bytes a connection's unfinished requests hold, kept on its session. */
const HELD = Symbol("bytes held");
type CountedSession = Http2Session & { [HELD]?: number };
type CallStream = ServerHttp2Stream & { [CALL]: GrpcStream };

function onData(this: CallStream, chunk: Buffer): void {
  this[CALL].data(chunk);
}
function onEnd(this: CallStream): void {
  this[CALL].requestEnd();
}
function onClose(this: CallStream): void {
  this[CALL].closed();
}
function onWantTrailers(this: CallStream): void {
  this[CALL].sendTrailers();
}
function ignore(): void {}

class GrpcStream implements CallResponder, ArrivingRequest {
  readonly #stream: ServerHttp2Stream;
  /** Kept from the start: a destroyed stream no longer names its session. */
  readonly #session: CountedSession | undefined;
  readonly #limits: StreamLimits;
  /** The requests still arriving (this one among them until it has arrived), each bounded in time. */
  readonly #arriving: ArrivingRequests;
  arrivingSince: number | undefined;
  newerArriving: ArrivingRequest | undefined;
  olderArriving: ArrivingRequest | undefined;
  #reader: RequestMessageReader | undefined;
  /** The method to run and the caller's deadline, while the request arrives. */
  #runner: MethodRunner | undefined;
  #deadline = Number.POSITIVE_INFINITY;
  #requestEnded = false;
  /** Bytes of this request held (counted in its connection's HELD). */
  #held = 0;
  #answered = false;
  #call: RunningCall | undefined;
  #trailers: Record<string, string> | undefined;

  constructor(stream: ServerHttp2Stream, limits: StreamLimits, arriving: ArrivingRequests) {
    this.#stream = stream;
    this.#session = stream.session;
    this.#limits = limits;
    this.#arriving = arriving;
    (stream as CallStream)[CALL] = this;
    // A write to a stream the client reset reports an error; the stream's close says all that matters.
    stream.on("error", ignore);
    stream.on("close", onClose);
  }

  serve(headers: IncomingHttpHeaders, lookup: (path: string) => MethodRunner | undefined): void {
    const stream = this.#stream;
    stream.on("data", onData);
    stream.on("end", onEnd);
    if (headers[":method"] !== "POST") {
      this.#refuseHttp(HTTP_STATUS_METHOD_NOT_ALLOWED);
      return;
    }
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !contentType.startsWith(GRPC_CONTENT_TYPE)) {
      this.#refuseHttp(HTTP_STATUS_UNSUPPORTED_MEDIA_TYPE);
      return;
    }
    const path = headers[":path"] ?? "";
    const runner = lookup(path);
    if (runner === undefined) {
      this.#answer(Code.Unimplemented, `the method ${path.slice(0, 200)} is not served by this plugin`);
      return;
    }
    const encoding = headers["grpc-encoding"];
    if (encoding !== undefined && encoding !== IDENTITY) {
      this.#answer(Code.Unimplemented, `the message encoding ${String(encoding).slice(0, 64)} is not supported; send identity`);
      return;
    }
    const now = Date.now();
    let deadline: number;
    try {
      deadline = deadlineFrom(headers["grpc-timeout"], now);
    } catch (err) {
      this.#refuse(err);
      return;
    }
    this.#reader = new RequestMessageReader(this.#limits.maxRequestBytes);
    this.#runner = runner;
    this.#deadline = deadline;
    this.#arriving.add(this, now);
  }

  /** ArrivingRequest: the request did not arrive whole within the bound. */
  arrivalTimedOut(): void {
    this.#answer(
      Code.ResourceExhausted,
      `the request did not arrive completely within ${this.#arriving.timeoutMs} ms; send each request whole`,
    );
  }

  data(chunk: Buffer): void {
    // Once answered (or refused), whatever else the client sends is dropped.
    if (this.#answered || this.#reader === undefined) return;
    const session = this.#session;
    const held = session?.[HELD] ?? 0;
    if (session !== undefined && held + chunk.length > this.#limits.maxUnfinishedBytesPerConnection) {
      this.#answer(
        Code.ResourceExhausted,
        `this connection's requests still arriving already hold ${held} bytes; send fewer large requests at once`,
      );
      return;
    }
    if (session !== undefined) session[HELD] = held + chunk.length;
    this.#held += chunk.length;
    try {
      this.#reader.push(chunk);
    } catch (err) {
      this.#refuse(err);
    }
  }

  /** The request is no longer held: it arrived whole, or was refused, or the stream is gone. */
  #release(): void {
    if (this.#held === 0) return;
    const session = this.#session;
    if (session !== undefined) session[HELD] = Math.max(0, (session[HELD] ?? 0) - this.#held);
    this.#held = 0;
  }

  requestEnd(): void {
    this.#requestEnded = true;
    const runner = this.#runner;
    if (this.#answered || runner === undefined || this.#reader === undefined) return;
    this.#arriving.remove(this);
    let request: Uint8Array;
    try {
      request = this.#reader.finish();
    } catch (err) {
      this.#refuse(err);
      return;
    }
    this.#reader = undefined;
    this.#runner = undefined;
    this.#release();
    this.#call = runner.start(request, this.#deadline, this);
  }

  closed(): void {
    this.#arriving.remove(this);
    this.#release();
    if (!this.#answered) {
      this.#answered = true;
      this.#call?.cancel();
    }
  }

  /** CallResponder: one message of a server stream. */
  write(message: Uint8Array): Promise<void> {
    const stream = this.#stream;
    if (this.#answered || stream.destroyed || stream.closed) return Promise.reject(new Error("the stream is closed"));
    if (!stream.headersSent) this.#respond();
    if (stream.write(framedMessage(message))) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        stream.off("close", onClose);
        resolve();
      };
      const onClose = () => {
        stream.off("drain", onDrain);
        reject(new Error("the stream closed"));
      };
      stream.once("drain", onDrain);
      stream.once("close", onClose);
    });
  }

  /** CallResponder: the call's end. */
  end(error: CsiError | undefined, response?: Uint8Array): void {
    if (error !== undefined) {
      this.#answer(error.code, error.rawMessage);
      return;
    }
    if (this.#answered) return;
    this.#answered = true;
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) return;
    if (!stream.headersSent) this.#respond();
    this.#trailers = { "grpc-status": "0" };
    if (response === undefined) stream.end();
    else stream.end(framedMessage(response));
    this.#resetIfClientStillSending();
  }

  #respond(): void {
    this.#stream.respond({ ":status": 200, "content-type": GRPC_CONTENT_TYPE }, { waitForTrailers: true });
    this.#stream.on("wantTrailers", onWantTrailers);
  }

  sendTrailers(): void {
    if (!this.#stream.destroyed) this.#stream.sendTrailers(this.#trailers ?? { "grpc-status": String(Code.Internal) });
  }

  #refuse(err: unknown): void {
    if (err instanceof WireError) this.#answer(err.code, err.message);
    else this.#answer(Code.Internal, err instanceof Error ? err.message : String(err));
  }

  /** Ends the call with a status: trailers only when nothing was sent yet, else after what was. */
  #answer(code: Code, message: string): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#arriving.remove(this);
    this.#reader = undefined;
    this.#release();
    const status = { "grpc-status": String(code), "grpc-message": encodedStatusMessage(message, this.#limits.maxStatusMessageBytes) };
    this.#whenReceived(() => {
      const stream = this.#stream;
      if (stream.destroyed || stream.closed) return;
      if (stream.headersSent) {
        this.#trailers = status;
        stream.end();
      } else {
        stream.respond({ ":status": 200, "content-type": GRPC_CONTENT_TYPE, ...status }, { endStream: true });
      }
      this.#resetIfClientStillSending();
    });
  }

  #refuseHttp(status: number): void {
    this.#answered = true;
    this.#arriving.remove(this);
    this.#whenReceived(() => {
      const stream = this.#stream;
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ":status": status }, { endStream: true });
      this.#resetIfClientStillSending();
    });
  }

  /**
   * Runs `answer` at once when the request has ended; otherwise once what
   * the connection has already received has been processed (an END_STREAM
   * in the same read as the request's headers included), so that the reset
   * that may follow the answer is decided on the stream's real state, and the
   * answer and the reset leave together.
   */
  #whenReceived(answer: () => void): void {
    if (this.#requestEnded) answer();
    else setImmediate(answer);
  }

  /**
   * A stream answered before its client ended it would stay open, counted
   * against the connection's concurrent streams, until the client ends it. A
   * client that never does (connect-node stops writing a request once its
   * response arrived; any hostile client) would block the connection after
   * MAX_CONCURRENT_STREAMS such calls, and a grpc-go client (kubelet, the
   * sidecars) that had queued the rest of its request counts the stream as
   * closed the moment its status arrives and opens the next one: one stream
   * over the limit, and nghttp2 closes the whole connection. So, as grpc-go's
   * own server does, the stream is reset with NO_ERROR together with its
   * status (RFC 9113 §8.1): nghttp2 sends the RST_STREAM right after the
   * HEADERS queued before it, and the stream no longer counts once it is sent.
   */
  #resetIfClientStillSending(): void {
    const stream = this.#stream;
    if (this.#requestEnded || stream.closed || stream.destroyed || stream.state.remoteClose !== 0) return;
    stream.close(NGHTTP2_NO_ERROR);
  }
}
