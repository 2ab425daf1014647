import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import type { Logger } from "../log/logger.js";
import { encodeHeaderBlock, HpackDecoder, HpackLimitError, type HeaderField } from "./hpack.js";
import { HTTP2, MAX_SNIFF_BYTES, SNIFF_TIMEOUT_MS } from "./transport-limits.js";

/**
 * Older Go gRPC clients (kubelet before 1.26, sidecars built with older
 * csi-lib-utils) send the unix socket's path as `:authority`. The HTTP/2 layer
 * under Node (nghttp2) resets every such stream with PROTOCOL_ERROR, and has no
 * switch to allow it. So each connection starts here (a TCP client sends
 * host:port and is handed over at once; reading its start still bounds it):
 *
 * 1. We send the server's connection preface (an empty SETTINGS frame) at once,
 *    because Go clients wait for it before they send a request, and read the
 *    client's bytes up to its first request headers, dropping the client's ACK
 *    of our SETTINGS (HTTP/2's own session must not see an ACK it never asked for).
 * 2. If that request's `:authority` is acceptable (every current client), the
 *    bytes are put back and the socket is handed to the HTTP/2 server as is:
 *    no cost for the life of the connection.
 * 3. Otherwise the connection runs through a relay that rewrites each request's
 *    header block with `:authority: localhost`; everything else passes unchanged.
 *
 * Bytes read here have not reached nghttp2, so its limits are applied here
 * first (frame size, CONTINUATION count, decoded header-list size, and a bound
 * on what the first request may make us hold); a connection that passes one
 * is closed, and a header block is never handed over half-read.
 */

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const FRAME_HEADER_LENGTH = 9;
const HEADERS = 0x1;
const SETTINGS = 0x4;
const CONTINUATION = 0x9;
const FLAG_ACK = 0x1;
const FLAG_END_STREAM = 0x1;
const FLAG_END_HEADERS = 0x4;
const FLAG_PADDED = 0x8;
const FLAG_PRIORITY = 0x20;
const MAX_FRAME_PAYLOAD = HTTP2.maxFramePayload;
const EMPTY_SETTINGS = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);
/** The characters nghttp2 accepts in :authority. */
const ACCEPTED_AUTHORITY = /^[A-Za-z0-9\-._~!$&'()*+,;=:@%[\]]*$/;

interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
  readonly raw: Buffer;
}

type Item =
  | { readonly kind: "raw"; readonly bytes: Buffer }
  | { readonly kind: "headers"; readonly frames: readonly Frame[]; readonly fields: HeaderField[] };

/** A client byte stream that breaks HTTP/2 or passes one of nghttp2's limits: the connection is closed. */
export class ClientStreamError extends Error {}

/** Splits the client's byte stream into frames, decoding every request header block in order. */
class ClientStream {
  readonly #decoder = new HpackDecoder();
  #pending: Buffer = Buffer.alloc(0);
  #prefaceSeen = false;
  #block: Frame[] | undefined;
  #blockBytes = 0;
  ackDropped = false;

  /** Feed bytes; returns what became complete. Throws ClientStreamError on a malformed or oversized stream. */
  push(chunk: Buffer): Item[] {
    try {
      return this.#push(chunk);
    } catch (err) {
      if (err instanceof HpackLimitError) throw new ClientStreamError(`request headers too large: ${err.message}`);
      throw err instanceof ClientStreamError ? err : new ClientStreamError((err as Error).message);
    }
  }

  #push(chunk: Buffer): Item[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const items: Item[] = [];
    if (!this.#prefaceSeen) {
      if (this.#pending.length < PREFACE.length) return items;
      if (!this.#pending.subarray(0, PREFACE.length).equals(PREFACE))
        throw new ClientStreamError("not an HTTP/2 client connection preface");
      this.#prefaceSeen = true;
      items.push({ kind: "raw", bytes: PREFACE });
      this.#pending = this.#pending.subarray(PREFACE.length);
    }
    while (this.#pending.length >= FRAME_HEADER_LENGTH) {
      const length = this.#pending.readUIntBE(0, 3);
      // Checked on the frame header, before any of the payload is held.
      if (length > MAX_FRAME_PAYLOAD)
        throw new ClientStreamError(`frame of ${length} bytes exceeds SETTINGS_MAX_FRAME_SIZE ${MAX_FRAME_PAYLOAD}`);
      if (this.#pending.length < FRAME_HEADER_LENGTH + length) break;
      const raw = this.#pending.subarray(0, FRAME_HEADER_LENGTH + length);
      this.#pending = this.#pending.subarray(raw.length);
      const frame: Frame = {
        type: raw[3] ?? 0,
        flags: raw[4] ?? 0,
        streamId: raw.readUInt32BE(5) & 0x7fffffff,
        payload: raw.subarray(FRAME_HEADER_LENGTH),
        raw,
      };
      if (this.#block) {
        if (frame.type !== CONTINUATION || frame.streamId !== this.#block[0]?.streamId) {
          throw new ClientStreamError("header block interrupted by another frame");
        }
        if (this.#block.length > HTTP2.maxContinuations) {
          throw new ClientStreamError(`header block continues past ${HTTP2.maxContinuations} CONTINUATION frames`);
        }
        this.#block.push(frame);
        this.#blockBytes += raw.length;
      } else if (frame.type === HEADERS) {
        this.#block = [frame];
        this.#blockBytes = raw.length;
      } else if (frame.type === CONTINUATION) {
        throw new ClientStreamError("CONTINUATION frame outside a header block");
      } else if (frame.type === SETTINGS && frame.flags & FLAG_ACK && !this.ackDropped) {
        this.ackDropped = true; // acknowledges our preface, not the HTTP/2 session's settings
        continue;
      } else {
        items.push({ kind: "raw", bytes: raw });
        continue;
      }
      if (frame.flags & FLAG_END_HEADERS) {
        const frames = this.#block;
        this.#block = undefined;
        this.#blockBytes = 0;
        items.push({ kind: "headers", frames, fields: this.#decoder.decode(blockOf(frames), HTTP2.maxHeaderListSize) });
      }
    }
    return items;
  }

  /** Whether a header block has begun and not ended. */
  get inBlock(): boolean {
    return this.#block !== undefined;
  }

  /** Bytes held that are not yet part of an item: a header block begun, and a frame begun. */
  get heldBytes(): number {
    return this.#blockBytes + this.#pending.length;
  }

  /** Those bytes as received, to hand them on with the connection. */
  unconsumed(): Buffer {
    return Buffer.concat([...(this.#block ?? []).map((f) => f.raw), this.#pending]);
  }
}

function blockOf(frames: readonly Frame[]): Buffer {
  return Buffer.concat(frames.map((f, i) => (i === 0 ? headersFragment(f).fragment : f.payload)));
}

function headersFragment(frame: Frame): { priority: Buffer | undefined; fragment: Buffer } {
  let start = 0;
  let padding = 0;
  if (frame.flags & FLAG_PADDED) {
    padding = frame.payload[0] ?? 0;
    start = 1;
  }
  let priority: Buffer | undefined;
  if (frame.flags & FLAG_PRIORITY) {
    priority = frame.payload.subarray(start, start + 5);
    start += 5;
  }
  if (start + padding > frame.payload.length) throw new Error("HEADERS padding exceeds the frame");
  return { priority, fragment: frame.payload.subarray(start, frame.payload.length - padding) };
}

function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const header = Buffer.alloc(FRAME_HEADER_LENGTH);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId & 0x7fffffff, 5);
  return header;
}

function authorityOf(fields: readonly HeaderField[]): string | undefined {
  return fields.find((f) => f.name === ":authority")?.value;
}

export function acceptableAuthority(value: string | undefined): boolean {
  return value === undefined || ACCEPTED_AUTHORITY.test(value);
}

/** The header block again, with an unacceptable :authority (or host) replaced by "localhost". */
function repairedHeaders(item: Extract<Item, { kind: "headers" }>): Buffer {
  const first = item.frames[0];
  if (!first) return Buffer.alloc(0);
  const fields = item.fields.map((f) =>
    (f.name === ":authority" || f.name === "host") && !acceptableAuthority(f.value) ? { name: f.name, value: "localhost" } : f,
  );
  const { priority } = headersFragment(first);
  const block = encodeHeaderBlock(fields);
  const payload = priority ? Buffer.concat([priority, block]) : block;
  const baseFlags = (first.flags & FLAG_END_STREAM) | (priority ? FLAG_PRIORITY : 0);
  const out: Buffer[] = [];
  for (let offset = 0, index = 0; offset < payload.length || index === 0; index++) {
    const piece = payload.subarray(offset, offset + MAX_FRAME_PAYLOAD);
    offset += piece.length;
    const last = offset >= payload.length;
    const type = index === 0 ? HEADERS : CONTINUATION;
    const flags = (index === 0 ? baseFlags : 0) | (last ? FLAG_END_HEADERS : 0);
    out.push(frameHeader(piece.length, type, flags, first.streamId), piece);
  }
  return Buffer.concat(out);
}

function bytesOf(item: Item): Buffer {
  return item.kind === "raw" ? item.bytes : Buffer.concat(item.frames.map((f) => f.raw));
}

export interface AuthorityRepairOptions {
  /** Receives the connection once it is known how to serve it. */
  readonly deliver: (stream: Socket | Duplex) => void;
  readonly log: Logger;
  /** How long to wait for the client to acknowledge the server's settings. */
  readonly sniffTimeoutMs?: number;
}

/** Serve one accepted unix-socket connection, repairing `:authority` if the client needs it. */
export function acceptWithAuthorityRepair(socket: Socket, options: AuthorityRepairOptions): void {
  const { deliver, log } = options;
  const stream = new ClientStream();
  const seen: Item[] = [];
  let seenBytes = 0;
  let firstAuthority: { value: string | undefined } | undefined;
  let settled = false;

  const cleanup = () => {
    clearTimeout(timer);
    socket.off("data", onData);
    socket.off("error", onError);
    socket.off("close", onClose);
  };
  const close = (reason: string) => {
    log.debug({ reason }, "closing a connection before its first request");
    settled = true;
    cleanup();
    socket.destroy();
  };
  const handOver = () => {
    settled = true;
    cleanup();
    socket.pause();
    socket.unshift(Buffer.concat([...seen.map(bytesOf), stream.unconsumed()]));
    deliver(socket);
  };
  const relay = () => {
    settled = true;
    cleanup();
    log.info(
      { authority: firstAuthority?.value?.slice(0, 256) },
      "client sends a socket path as :authority (older gRPC); relaying its requests with :authority localhost",
    );
    deliver(repairingRelay(socket, stream, seen, log));
  };
  const decide = () => {
    if (settled || !stream.ackDropped || !firstAuthority) return;
    if (acceptableAuthority(firstAuthority.value)) handOver();
    else relay();
  };
  const onData = (chunk: Buffer) => {
    let items: Item[];
    try {
      items = stream.push(chunk);
    } catch (err) {
      // Not HTTP/2 as a gRPC client speaks it, or past nghttp2's limits: nothing could serve it.
      close((err as Error).message);
      return;
    }
    for (const item of items) {
      seen.push(item);
      seenBytes += item.kind === "raw" ? item.bytes.length : item.frames.reduce((n, f) => n + f.raw.length, 0);
      if (item.kind === "headers" && !firstAuthority) firstAuthority = { value: authorityOf(item.fields) };
    }
    decide();
    if (!settled && seenBytes + stream.heldBytes > MAX_SNIFF_BYTES) {
      close(`more than ${MAX_SNIFF_BYTES} bytes before the first request could be served`);
    }
  };
  const onError = () => socket.destroy();
  const onClose = () => cleanup();
  const timer = setTimeout(() => {
    if (settled) return;
    if (!stream.ackDropped) close("client never acknowledged the server's HTTP/2 settings");
    else if (stream.inBlock) close("header block still incomplete when the connection start timed out");
    else handOver(); // an idle client: serve it directly
  }, options.sniffTimeoutMs ?? SNIFF_TIMEOUT_MS);
  timer.unref();

  socket.on("data", onData);
  socket.on("error", onError);
  socket.on("close", onClose);
  socket.write(EMPTY_SETTINGS);
}

/** A duplex standing in for the socket: client bytes flow in repaired, server bytes go straight out. */
function repairingRelay(socket: Socket, stream: ClientStream, seen: readonly Item[], log: Logger): Duplex {
  const translate = (item: Item): Buffer => (item.kind === "headers" ? repairedHeaders(item) : item.bytes);
  const relay = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  relay.on("error", (err) => log.debug({ err: err.message }, "relayed connection error"));
  relay.push(Buffer.concat(seen.map(translate)));
  socket.on("data", (chunk: Buffer) => {
    try {
      const out = Buffer.concat(stream.push(chunk).map(translate));
      if (out.length > 0 && !relay.push(out)) socket.pause();
    } catch (err) {
      log.warn({ err: (err as Error).message }, "malformed or oversized HTTP/2 from a relayed client; closing the connection");
      socket.destroy();
    }
  });
  socket.on("end", () => relay.push(null));
  socket.on("error", (err) => relay.destroy(err));
  socket.on("close", () => relay.destroy());
  socket.resume();
  return relay;
}
