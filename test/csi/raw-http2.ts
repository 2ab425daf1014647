import { connect, type Socket } from "node:net";
import type { CsiClients } from "../../src/csi/client.js";
import { encodeHeaderBlock, HpackDecoder, type HeaderField } from "../../src/csi/hpack.js";

/** Hand-built HTTP/2 for tests that must send what no well-behaved client library would. */

export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
export const DATA = 0x0;
export const HEADERS = 0x1;
export const RST_STREAM = 0x3;
export const SETTINGS = 0x4;
export const PING = 0x6;
export const GOAWAY = 0x7;
export const CONTINUATION = 0x9;
export const END_STREAM = 0x1;
export const ACK = 0x1;
export const END_HEADERS = 0x4;

export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** Only a frame header announcing `length` bytes of payload. */
export function frameHeader(type: number, flags: number, streamId: number, length: number): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return header;
}

/**
 * What a client sends first: preface, empty SETTINGS and the ACK of the server's first SETTINGS (send it once
 * that arrived: RawConnection.serverSettings). RawConnection acknowledges later SETTINGS itself.
 */
export function clientStart(): Buffer {
  return Buffer.concat([PREFACE, frame(SETTINGS, 0, 0), frame(SETTINGS, ACK, 0)]);
}

export function requestFields(path: string, authority = "localhost"): HeaderField[] {
  return [
    { name: ":method", value: "POST" },
    { name: ":scheme", value: "http" },
    { name: ":path", value: path },
    { name: ":authority", value: authority },
    { name: "content-type", value: "application/grpc" },
    { name: "te", value: "trailers" },
  ];
}

export function requestBlock(path: string, authority = "localhost"): Buffer {
  return encodeHeaderBlock(requestFields(path, authority));
}

/** A gRPC message frame with an empty protobuf message (every CSI request may be empty on the wire). */
export function emptyGrpcMessage(): Buffer {
  return Buffer.alloc(5);
}

/** A complete unary request on one stream: HEADERS then DATA with END_STREAM. */
export function unaryRequest(streamId: number, path: string, authority = "localhost"): Buffer {
  return Buffer.concat([
    frame(HEADERS, END_HEADERS, streamId, requestBlock(path, authority)),
    frame(DATA, END_STREAM, streamId, emptyGrpcMessage()),
  ]);
}

/** Huffman code of 'a' (00011) eight times: 40 bits, 5 bytes. */
const HUFFMAN_8A = Buffer.from([0x18, 0xc6, 0x31, 0x8c, 0x63]);

/** A literal header field (new name, without indexing) whose value is `bytes` of Huffman code, 8/5 as many 'a's. */
export function huffmanField(name: string, bytes: number): Buffer {
  const value = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 5) HUFFMAN_8A.copy(value, i, 0, Math.min(5, bytes - i));
  return Buffer.concat([Buffer.from([0x00, name.length]), Buffer.from(name, "latin1"), hpackInteger(bytes, 7, 0x80), value]);
}

export function hpackInteger(value: number, prefixBits: number, flags: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([flags | value]);
  const out = [flags | max];
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A response seen on one stream: its header fields (headers and trailers) and whether it was reset. */
export interface StreamResult {
  readonly fields: HeaderField[];
  readonly reset: boolean;
  readonly ended: boolean;
}

/** A raw client connection that records what the server sends and when it closes. */
export class RawConnection {
  readonly socket: Socket;
  readonly closed: Promise<number>;
  readonly #decoder = new HpackDecoder();
  #received = Buffer.alloc(0);
  #block: Buffer[] = [];
  readonly streams = new Map<number, { fields: HeaderField[]; reset: boolean; ended: boolean }>();
  goaway: number | undefined;
  /** PING frames the server sent (never answered: this client does not ACK them). */
  pings = 0;
  isClosed = false;
  #settingsSeen = 0;
  #onFirstSettings: (() => void) | undefined;
  /** Resolves when the server's first SETTINGS frame has arrived. */
  readonly serverSettings: Promise<void> = new Promise((resolve) => {
    this.#onFirstSettings = resolve;
  });

  /** `autoAck: false` leaves acknowledging the server's later SETTINGS to the test (never inside a header block). */
  constructor(
    target: string | { port: number; host: string },
    readonly options: { autoAck?: boolean } = {},
  ) {
    this.socket = typeof target === "string" ? connect(target) : connect(target.port, target.host);
    this.socket.on("error", () => undefined);
    this.socket.on("data", (chunk: Buffer) => this.#read(chunk));
    const started = Date.now();
    this.closed = new Promise((resolve) =>
      this.socket.once("close", () => {
        this.isClosed = true;
        resolve(Date.now() - started);
      }),
    );
  }

  /** Waits for the server's SETTINGS and sends the client's start (clientStart). */
  async start(): Promise<void> {
    await this.serverSettings;
    await this.write(clientStart());
  }

  connected(): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.socket.connecting) resolve();
      this.socket.once("connect", () => resolve());
      this.socket.once("error", reject);
    });
  }

  /** Writes unless the connection is gone; resolves when the bytes are handed to the kernel. */
  write(bytes: Buffer): Promise<boolean> {
    if (this.isClosed || this.socket.destroyed) return Promise.resolve(false);
    return new Promise((resolve) => this.socket.write(bytes, (err) => resolve(!err)));
  }

  /** Resolves once the stream has ended (END_STREAM from the server or a reset), or rejects after `timeoutMs`. */
  async result(streamId: number, timeoutMs: number): Promise<StreamResult> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = this.streams.get(streamId);
      if (s && (s.ended || s.reset)) return s;
      if (this.isClosed) throw new Error(`connection closed before stream ${streamId} ended (GOAWAY ${this.goaway ?? "none"})`);
      if (Date.now() > deadline) throw new Error(`stream ${streamId} did not end within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.socket.destroy();
  }

  #read(chunk: Buffer): void {
    this.#received = Buffer.concat([this.#received, chunk]);
    while (this.#received.length >= 9) {
      const length = this.#received.readUIntBE(0, 3);
      if (this.#received.length < 9 + length) break;
      const type = this.#received[3] ?? 0;
      const flags = this.#received[4] ?? 0;
      const streamId = this.#received.readUInt32BE(5) & 0x7fffffff;
      const payload = this.#received.subarray(9, 9 + length);
      this.#received = this.#received.subarray(9 + length);
      const stream = this.streams.get(streamId) ?? { fields: [], reset: false, ended: false };
      if (streamId !== 0) this.streams.set(streamId, stream);
      if (type === SETTINGS && !(flags & ACK) && this.#settingsSeen++ === 0) this.#onFirstSettings?.();
      else if (type === SETTINGS && !(flags & ACK) && this.options.autoAck !== false) void this.write(frame(SETTINGS, ACK, 0));
      if (type === GOAWAY) this.goaway = payload.readUInt32BE(4);
      if (type === PING && !(flags & ACK)) this.pings++;
      if (type === RST_STREAM) stream.reset = true;
      if (type === HEADERS || type === CONTINUATION) {
        this.#block.push(type === HEADERS && flags & 0x20 ? payload.subarray(5) : payload);
        if (flags & END_HEADERS) {
          stream.fields.push(...this.#decoder.decode(Buffer.concat(this.#block)));
          this.#block = [];
        }
      }
      if ((type === HEADERS || type === DATA) && flags & END_STREAM) stream.ended = true;
    }
  }
}

export function fieldValue(result: StreamResult, name: string): string | undefined {
  return result.fields.find((f) => f.name === name)?.value;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Probes on their own connection every `intervalMs` until stopped, running
 * `sample` (e.g. a memory reading) before each; reports the slowest answer and
 * any failure.
 */
export function watchProbes(clients: CsiClients, intervalMs: number, sample: () => Promise<void> = async () => undefined) {
  let slowest = 0;
  let failures = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      await sample();
      const started = Date.now();
      try {
        await clients.identity.probe({}, { timeoutMs: 5_000 });
      } catch {
        failures++;
      }
      slowest = Math.max(slowest, Date.now() - started);
      await sleep(intervalMs);
    }
  })();
  return async () => {
    running = false;
    await loop;
    return { slowest, failures };
  };
}
