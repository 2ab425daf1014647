/**
 * gRPC's wire format over HTTP/2, as the server needs it (the gRPC "PROTOCOL-HTTP2"
 * document): the request headers it checks, the length-prefixed message of a
 * request, the grpc-timeout header, and the status a call ends with. Kept apart
 * from the streams that carry it so each rule can be read and tested on its own.
 */
import { Code } from "../errors.js";
import { cutToEncodedLength } from "./status-size.js";

/** The 5-byte prefix of every message: a compressed flag and a 32-bit big-endian length. */
export const MESSAGE_PREFIX_BYTES = 5;

/** Every response's content type; requests send `application/grpc` or `application/grpc+proto`. */
export const GRPC_CONTENT_TYPE = "application/grpc";

/** The only message encoding served: CSI messages are small and clients do not compress them by default. */
export const IDENTITY = "identity";

/** A request the transport refuses before any handler runs: the status to answer with. */
export class WireError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Collects the one message of a request (unary and server-streaming calls both
 * carry exactly one) from the chunks of its HTTP/2 stream. The length is
 * checked as soon as the prefix has arrived, so a message above the limit is
 * refused before any of its bytes are held.
 */
export class RequestMessageReader {
  readonly #maxBytes: number;
  #chunks: Buffer[] = [];
  #received = 0;
  /** Prefix plus message, once the prefix has arrived. */
  #expected = -1;

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes;
  }

  /** Takes the next chunk; throws a WireError when the request cannot be a valid one. */
  push(chunk: Buffer): void {
    this.#received += chunk.length;
    this.#chunks.push(chunk);
    if (this.#expected < 0 && this.#received >= MESSAGE_PREFIX_BYTES) {
      const head = this.#joined();
      const compressed = head[0];
      const length = head.readUInt32BE(1);
      if (compressed !== 0) {
        throw new WireError(
          Code.Internal,
          "the request message is marked compressed, but no grpc-encoding was agreed; send it uncompressed",
        );
      }
      if (length > this.#maxBytes) {
        throw new WireError(
          Code.ResourceExhausted,
          `the request message is ${length} bytes, more than the ${this.#maxBytes} bytes this driver accepts`,
        );
      }
      this.#expected = MESSAGE_PREFIX_BYTES + length;
    }
    if (this.#expected >= 0 && this.#received > this.#expected) {
      throw new WireError(Code.Internal, "the request carries more than one message; CSI calls take exactly one");
    }
  }

  /** The message, once the client has ended its side; throws a WireError when it is missing or cut short. */
  finish(): Uint8Array {
    if (this.#received === 0) throw new WireError(Code.Internal, "the request carries no message; CSI calls take exactly one");
    if (this.#expected < 0 || this.#received < this.#expected) {
      throw new WireError(Code.Internal, "the request ended in the middle of its message");
    }
    const whole = this.#joined();
    this.#chunks = [];
    return whole.subarray(MESSAGE_PREFIX_BYTES);
  }

  #joined(): Buffer {
    if (this.#chunks.length !== 1) this.#chunks = [Buffer.concat(this.#chunks, this.#received)];
    return this.#chunks[0] as Buffer;
  }
}

/** A message with its 5-byte prefix, ready to be written to the response stream. */
export function framedMessage(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(MESSAGE_PREFIX_BYTES + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, MESSAGE_PREFIX_BYTES);
  return frame;
}

const TIMEOUT = /^(\d{1,8})([HMSmun])$/;
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 1e-3, n: 1e-6 };

/**
 * The deadline (epoch milliseconds) a grpc-timeout header sets, Infinity when
 * there is none. A malformed value is the client's error.
 */
export function deadlineFrom(header: string | string[] | undefined, now: number): number {
  if (header === undefined) return Number.POSITIVE_INFINITY;
  const match = typeof header === "string" ? TIMEOUT.exec(header) : null;
  if (match === null)
    throw new WireError(Code.Internal, "the grpc-timeout header is malformed; send at most 8 digits and a unit (H, M, S, m, u or n)");
  return now + Number(match[1]) * (TIMEOUT_UNIT_MS[match[2] as string] as number);
}

/**
 * The grpc-message value for a status message: cut to `maxBytes` as sent, then
 * percent-encoded (clients decode it; the header must stay printable ASCII).
 */
export function encodedStatusMessage(message: string, maxBytes: number): string {
  return encodeURI(cutToEncodedLength(message, maxBytes));
}
