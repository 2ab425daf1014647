import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { CsiServer, type CsiServerOptions } from "../../src/csi/server.js";
import { HTTP2, MAX_CONNECTIONS, SNIFF_TIMEOUT_MS } from "../../src/csi/transport-limits.js";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { captureLog } from "../support/log-capture.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  ACK,
  CONTINUATION,
  clientStart,
  DATA,
  END_HEADERS,
  END_STREAM,
  emptyGrpcMessage,
  fieldValue,
  frame,
  frameHeader,
  HEADERS,
  hpackInteger,
  huffmanField,
  RawConnection,
  requestBlock,
  SETTINGS,
  sleep,
  unaryRequest,
  watchProbes,
} from "./raw-http2.js";

/**
 * Hostile HTTP/2 against the server in this process: each connection must be
 * closed (or its stream ended) promptly while Probe on another connection
 * keeps answering. Memory under the same attacks is measured on the built
 * program in hostile-http2-process.test.ts.
 */

const PROBE = "/csi.v1.Identity/Probe";
const LEGACY_AUTHORITY = "/var/lib/kubelet/plugins/test/csi.sock";

describe("hostile HTTP/2", () => {
  let dir: string;
  let server: CsiServer | undefined;
  let clients: CsiClients | undefined;
  const raws: RawConnection[] = [];
  const log = captureLog("debug");

  async function start(extra: Partial<CsiServerOptions> = {}): Promise<string> {
    const path = join(dir, "csi.sock");
    server = await CsiServer.start({
      endpoint: { kind: "unix", path },
      socketMode: 0o660,
      log: log.logger,
      routes: (r) => r.service(Identity, { getPluginInfo: () => ({ name: "hostile.csi.example.com" }), probe: () => ({ ready: true }) }),
      shutdownTimeoutMs: 1_000,
      ...extra,
    });
    const endpoint = server.endpoint;
    clients = connectCsi(endpoint.kind === "unix" ? `unix://${endpoint.path}` : `tcp://127.0.0.1:${endpoint.port}`);
    await clients.identity.probe({});
    return path;
  }

  function raw(target: string | { port: number; host: string }, options: { autoAck?: boolean } = {}): RawConnection {
    const connection = new RawConnection(target, options);
    raws.push(connection);
    return connection;
  }

  /** Keeps writing `next()` until the server closes the connection or `limit` bytes were written. */
  async function flood(connection: RawConnection, next: () => Buffer, limit: number): Promise<number> {
    let written = 0;
    for (let bytes = next(); written < limit && (await connection.write(bytes)); bytes = next()) written += bytes.length;
    return written;
  }

  beforeEach(async () => {
    dir = await makeTestDir("hostile");
    log.lines.length = 0;
  });
  afterEach(async () => {
    for (const connection of raws.splice(0)) connection.close();
    clients?.close();
    clients = undefined;
    await server?.shutdown();
    server = undefined;
    await removeTestDir(dir);
  });

  it("closes a connection that announces a frame longer than 16 KiB before reading its payload", async () => {
    const socket = await start();
    const probes = watchProbes(clients as CsiClients, 50);
    const attackers = Array.from({ length: 20 }, () => raw(socket));
    for (const attacker of attackers) {
      await attacker.start();
      // 16 MiB announced; the payload trickles in, as the server must not wait for it.
      await attacker.write(frameHeader(HEADERS, END_HEADERS, 1, 0xffffff));
      await attacker.write(Buffer.alloc(64 * 1024, 0x41));
    }
    for (const attacker of attackers) expect(await attacker.closed).toBeLessThan(2_000);
    const { slowest, failures } = await probes();
    expect(failures).toBe(0);
    expect(slowest).toBeLessThan(1_000);
  });

  it.each([
    ["while the connection start is read", "localhost"],
    ["after the relay took the connection over", LEGACY_AUTHORITY],
  ])("closes a connection that sends CONTINUATION frames without end %s", async (_when, authority) => {
    const socket = await start();
    const probes = watchProbes(clients as CsiClients, 50);
    const attacker = raw(socket);
    await attacker.start();
    if (authority === LEGACY_AUTHORITY) {
      // A complete first request makes the relay take the connection over.
      await attacker.write(unaryRequest(1, PROBE, authority));
      expect(fieldValue(await attacker.result(1, 5_000), "grpc-status")).toBe("0");
    }
    await attacker.write(frame(HEADERS, 0, 3, requestBlock(PROBE, authority)));
    const piece = frame(CONTINUATION, 0, 3, Buffer.alloc(HTTP2.maxFramePayload, 0x00));
    const written = await flood(attacker, () => piece, 256 * 1024 * 1024);
    expect(await attacker.closed).toBeLessThan(3_000);
    expect(written).toBeLessThan(64 * 1024 * 1024);
    const { slowest, failures } = await probes();
    expect(failures).toBe(0);
    expect(slowest).toBeLessThan(1_000);
  });

  it("closes a connection whose header value is a huge Huffman string, without decoding it", async () => {
    const socket = await start();
    // One frame of 16 MiB (past the frame limit) and, within every frame limit, a block of nine full frames.
    const inOneFrame = raw(socket);
    await inOneFrame.start();
    const huge = Buffer.concat([requestBlock(PROBE), huffmanField("x-huge", 0xffffff - 200)]);
    const started = Date.now();
    await inOneFrame.write(frame(HEADERS, END_HEADERS, 1, huge));
    await inOneFrame.closed;
    expect(Date.now() - started).toBeLessThan(2_000);

    const inNineFrames = raw(socket);
    await inNineFrames.start();
    const block = Buffer.concat([requestBlock(PROBE, LEGACY_AUTHORITY), huffmanField("x-huge", 9 * HTTP2.maxFramePayload - 200)]);
    const frames: Buffer[] = [];
    for (let offset = 0, i = 0; offset < block.length; offset += HTTP2.maxFramePayload, i++) {
      const last = offset + HTTP2.maxFramePayload >= block.length;
      frames.push(
        frame(i === 0 ? HEADERS : CONTINUATION, last ? END_HEADERS : 0, 1, block.subarray(offset, offset + HTTP2.maxFramePayload)),
      );
    }
    await inNineFrames.write(Buffer.concat(frames));
    expect(await inNineFrames.closed).toBeLessThan(2_000);
    expect(log.records().some((r) => String(r.reason).includes("request headers too large"))).toBe(true);
    expect((await (clients as CsiClients).identity.probe({})).ready).toBe(true);
  });

  it("closes a connection whose header block would expand past the header-list limit", async () => {
    const socket = await start();
    const attacker = raw(socket);
    await attacker.start();
    // A 4000-byte value indexed in the dynamic table, then referred to by one-byte indexes: 16 KiB would decode to 62 MiB.
    const indexed = Buffer.concat([Buffer.from([0x40, 3]), Buffer.from("x-a"), hpackInteger(4000, 7, 0), Buffer.alloc(4000, 0x61)]);
    const head = Buffer.concat([requestBlock(PROBE, LEGACY_AUTHORITY), indexed]);
    const block = Buffer.concat([head, Buffer.alloc(HTTP2.maxFramePayload - head.length, 0xbe)]); // 0xbe: dynamic index 62
    const started = Date.now();
    await attacker.write(frame(HEADERS, END_HEADERS | END_STREAM, 1, block));
    await attacker.closed;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect((await (clients as CsiClients).identity.probe({})).ready).toBe(true);
  });

  it("closes, and never hands over, a connection whose header block is half-sent when the start times out", async () => {
    const socket = await start();
    const attacker = raw(socket);
    await attacker.start();
    await attacker.write(frame(HEADERS, 0, 1, requestBlock(PROBE))); // no END_HEADERS, and nothing more
    const closedAfter = await attacker.closed;
    expect(closedAfter).toBeGreaterThanOrEqual(SNIFF_TIMEOUT_MS - 100);
    expect(closedAfter).toBeLessThan(SNIFF_TIMEOUT_MS + 2_000);
    expect(log.records().some((r) => String(r.reason).includes("header block still incomplete"))).toBe(true);
  });

  it("serves a normal client whose next header block is half-received when the connection is handed over", async () => {
    const socket = await start();
    const client = raw(socket, { autoAck: false });
    // The first request completes the start; stream 3's HEADERS arrives in the same write, its CONTINUATION later.
    const block3 = requestBlock("/csi.v1.Identity/GetPluginInfo");
    await client.serverSettings;
    await client.write(Buffer.concat([clientStart(), unaryRequest(1, PROBE), frame(HEADERS, 0, 3, block3.subarray(0, 10))]));
    await sleep(200);
    await client.write(
      Buffer.concat([
        frame(CONTINUATION, END_HEADERS, 3, block3.subarray(10)),
        frame(DATA, END_STREAM, 3, emptyGrpcMessage()),
        frame(SETTINGS, ACK, 0), // of the HTTP/2 session's SETTINGS, once the header block is whole
      ]),
    );
    expect(fieldValue(await client.result(1, 5_000), "grpc-status")).toBe("0");
    expect(fieldValue(await client.result(3, 5_000), "grpc-status")).toBe("0");
    expect(client.goaway).toBeUndefined();
  });

  it("ends a request that stops arriving part-way, and keeps serving the connection", async () => {
    const socket = await start({ unfinishedRequestTimeoutMs: 500 });
    const client = raw(socket);
    await client.start();
    // A message of 100 KiB announced, 10 KiB sent, then silence.
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(100 * 1024, 1);
    await client.write(frame(HEADERS, END_HEADERS, 1, requestBlock(PROBE)));
    await client.write(frame(DATA, 0, 1, Buffer.concat([prefix, Buffer.alloc(10 * 1024)])));
    const started = Date.now();
    const stalled = await client.result(1, 5_000);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(fieldValue(stalled, "grpc-status")).toBe("8"); // RESOURCE_EXHAUSTED
    expect(decodeURIComponent(fieldValue(stalled, "grpc-message") ?? "")).toMatch(/did not arrive completely/);
    await client.write(unaryRequest(3, PROBE));
    expect(fieldValue(await client.result(3, 5_000), "grpc-status")).toBe("0");
  });

  it("ends at once a request announcing a message larger than the receive limit", async () => {
    const socket = await start();
    const client = raw(socket);
    await client.start();
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(4 * 1024 * 1024, 1);
    await client.write(frame(HEADERS, END_HEADERS, 1, requestBlock(PROBE)));
    await client.write(frame(DATA, 0, 1, Buffer.concat([prefix, Buffer.alloc(1024)])));
    const result = await client.result(1, 2_000);
    expect(fieldValue(result, "grpc-status")).toBe("8");
  });

  it("closes a connection idle for the configured time, and one that never speaks HTTP/2, on TCP too", async () => {
    const path = await start({ idleTimeoutMs: 300 });
    const idle = raw(path);
    await idle.start();
    await idle.write(unaryRequest(1, PROBE));
    expect(fieldValue(await idle.result(1, 5_000), "grpc-status")).toBe("0");
    const closedAfter = await idle.closed;
    expect(closedAfter).toBeLessThan(3_000);
    expect(idle.goaway).toBe(0); // NO_ERROR: a graceful close the client reconnects after
    await server?.shutdown();
    clients?.close();

    await start({ endpoint: { kind: "tcp", host: "127.0.0.1", port: 0 } });
    const endpoint = (server as CsiServer).endpoint;
    const silent = raw({ host: "127.0.0.1", port: endpoint.kind === "tcp" ? endpoint.port : 0 });
    await silent.connected();
    const silentFor = await silent.closed;
    expect(silentFor).toBeLessThan(SNIFF_TIMEOUT_MS + 2_000);
    expect((await (clients as CsiClients).identity.probe({})).ready).toBe(true);
  });

  it("sends a keepalive PING after silence and closes a connection whose peer does not answer it; one that answers stays", async () => {
    const socket = await start({ keepalive: { timeMs: 300, timeoutMs: 300 } });
    const mute = raw(socket);
    await mute.start();
    await mute.write(unaryRequest(1, PROBE));
    expect(fieldValue(await mute.result(1, 5_000), "grpc-status")).toBe("0");
    const closedAfter = await mute.closed;
    expect(mute.pings).toBeGreaterThanOrEqual(1);
    expect(closedAfter).toBeGreaterThanOrEqual(500);
    expect(closedAfter).toBeLessThan(3_000);
    // The Node client of start() answers PINGs: after the same silence its connection still serves.
    await sleep(1_200);
    expect((await (clients as CsiClients).identity.probe({})).ready).toBe(true);
  });

  it(`closes connections beyond ${MAX_CONNECTIONS} at once and serves again when they are gone`, async () => {
    const socket = await start();
    clients?.close(); // its connection would count
    const held = Array.from({ length: MAX_CONNECTIONS }, () => raw(socket));
    await Promise.all(held.map((c) => c.connected()));
    await sleep(100);
    const extra = raw(socket);
    expect(await extra.closed).toBeLessThan(1_000);
    expect(held.every((c) => !c.isClosed)).toBe(true);
    for (const c of held) c.close();
    await sleep(100);
    clients = connectCsi(`unix://${socket}`);
    expect((await clients.identity.probe({})).ready).toBe(true);
  });
});
