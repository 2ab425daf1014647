import { type ClientHttp2Session, type ClientHttp2Stream, connect as http2Connect } from "node:http2";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { HTTP2, MAX_CONCURRENT_STREAMS, MAX_RECEIVE_MESSAGE_BYTES, UNFINISHED_REQUEST_TIMEOUT_MS } from "../../src/csi/transport-limits.js";
import { type DriverProcess, rssMiB, startDriver } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  CONTINUATION,
  END_HEADERS,
  frame,
  frameHeader,
  HEADERS,
  RawConnection,
  requestBlock,
  unaryRequest,
  watchProbes,
} from "./raw-http2.js";

/**
 * The attacks of hostile-http2.test.ts against the built program, measuring
 * what they make it hold: its resident memory (from /proc) before and at the
 * peak of each attack, with bounds far above what the limits allow so that
 * only an unbounded buffer trips them. A Probe on its own connection must keep
 * answering promptly throughout.
 */

const PROBE = "/csi.v1.Identity/Probe";
const LEGACY_AUTHORITY = "/var/lib/kubelet/plugins/test/csi.sock";
const MiB = 1024 * 1024;

/** Samples the driver's RSS and a Probe's latency every 100 ms until stopped. */
function watch(pid: number, clients: CsiClients) {
  let peak = 0;
  const stop = watchProbes(clients, 100, async () => {
    peak = Math.max(peak, await rssMiB(pid));
  });
  return async () => {
    const probes = await stop();
    peak = Math.max(peak, await rssMiB(pid));
    return { peak, ...probes };
  };
}

/**
 * How a limit ends a stream: RESOURCE_EXHAUSTED from the server (message too large, or not arrived in time), or a
 * reset by Node once the connection's session memory is spent: ENHANCE_YOUR_CALM (11) for the streams holding it,
 * REFUSED_STREAM (7) for new ones.
 */
function endedByALimit(result: { status: string }): boolean {
  return ["8", "reset 11", "reset 7"].includes(result.status);
}

function statusCounts(results: readonly { status: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return counts;
}

describe("hostile HTTP/2 against the built program", () => {
  let dir: string;
  let driver: DriverProcess | undefined;
  let clients: CsiClients | undefined;
  let socket: string;
  const cleanups: (() => void)[] = [];

  beforeEach(async () => {
    dir = await makeTestDir("hostile-process");
    socket = join(dir, "csi.sock");
    driver = await startDriver(socket, [
      "--backend",
      "local",
      "--data-dir",
      join(dir, "data"),
      "--node-id",
      "test-node",
      "--log-level",
      "warn",
    ]);
    clients = connectCsi(driver.endpoint);
    // Warm up: the first calls load code and allocate pools, which is not what is measured.
    for (let i = 0; i < 20; i++) await clients.identity.probe({});
  });
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) cleanup();
    clients?.close();
    clients = undefined;
    expect(await driver?.stop()).toBe(0);
    driver = undefined;
    await removeTestDir(dir);
  });

  const pid = () => driver?.child.pid ?? 0;

  it("holds no oversized frame: 20 connections announcing 16 MiB frames", async () => {
    const before = await rssMiB(pid());
    const stop = watch(pid(), clients as CsiClients);
    cleanups.push(() => void stop());
    const attackers = Array.from({ length: 20 }, () => new RawConnection(socket));
    for (const attacker of attackers) cleanups.push(() => attacker.close());
    await Promise.all(
      attackers.map(async (attacker) => {
        await attacker.start();
        await attacker.write(frameHeader(HEADERS, END_HEADERS, 1, 0xffffff));
        for (let sent = 0; sent < 16 * MiB && (await attacker.write(Buffer.alloc(MiB, 0x41))); sent += MiB);
      }),
    );
    for (const attacker of attackers) expect(await attacker.closed).toBeLessThan(5_000);
    const { peak, slowest, failures } = await stop();
    expect(failures).toBe(0);
    expect(slowest).toBeLessThan(1_000);
    expect(peak - before).toBeLessThan(100);
  });

  it("holds no endless header block: CONTINUATION frames after the relay took over", async () => {
    const before = await rssMiB(pid());
    const stop = watch(pid(), clients as CsiClients);
    cleanups.push(() => void stop());
    const attacker = new RawConnection(socket);
    cleanups.push(() => attacker.close());
    await attacker.start();
    await attacker.write(unaryRequest(1, PROBE, LEGACY_AUTHORITY));
    await attacker.result(1, 5_000);
    await attacker.write(frame(HEADERS, 0, 3, requestBlock(PROBE, LEGACY_AUTHORITY)));
    const piece = frame(CONTINUATION, 0, 3, Buffer.alloc(HTTP2.maxFramePayload));
    const chunk = Buffer.concat(Array.from({ length: 64 }, () => piece));
    let written = 0;
    while (written < 512 * MiB && (await attacker.write(chunk))) written += chunk.length;
    expect(await attacker.closed).toBeLessThan(10_000);
    expect(written).toBeLessThan(64 * MiB);
    const { peak, slowest, failures } = await stop();
    expect(failures).toBe(0);
    expect(slowest).toBeLessThan(1_000);
    expect(peak - before).toBeLessThan(100);
  });

  /** How and when a stream ended: a gRPC status (the server's side is done; what the client still sends is dropped) or a reset. */
  function streamEnd(req: ClientHttp2Stream): Promise<{ status: string; afterMs: number }> {
    const started = Date.now();
    return new Promise((resolve) => {
      const done = (status: string) => resolve({ status, afterMs: Date.now() - started });
      req.on("trailers", (t) => done(String(t["grpc-status"])));
      req.on("response", (h) => {
        if (h["grpc-status"] !== undefined) done(String(h["grpc-status"]));
      });
      req.on("close", () => done(`reset ${req.rstCode}`));
      req.resume();
    });
  }

  /** Opens `count` streams on one connection, each announcing `announced` bytes and sending `sent`, never ending. */
  async function unfinishedStreams(session: ClientHttp2Session, count: number, announced: number, sent: number) {
    await new Promise((resolve) => session.once("remoteSettings", resolve));
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(announced, 1);
    const body = Buffer.concat([prefix, Buffer.alloc(sent)]); // one buffer for every stream: the client stays light
    const streams = Array.from({ length: count }, () => {
      const req = session.request({
        ":method": "POST",
        ":path": PROBE,
        "content-type": "application/grpc",
        te: "trailers",
      });
      req.write(body);
      req.on("error", () => undefined);
      cleanups.push(() => req.destroy());
      return streamEnd(req);
    });
    return Promise.all(streams);
  }

  it("ends 400 streams that each send 3.5 MiB of an announced 4 MiB message, at once", async () => {
    const before = await rssMiB(pid());
    const stop = watch(pid(), clients as CsiClients);
    cleanups.push(() => void stop());
    // The client's own session memory is not capped (as in Go clients and connectCsi): Node's default of 10 MiB
    // counts the 3.5 MiB each stream queues, and a client past it drops the answers it receives, which would
    // hide what the server sent.
    const session = http2Connect("http://localhost", {
      createConnection: () => netConnect(socket),
      maxSessionMemory: Number.MAX_SAFE_INTEGER,
    });
    session.on("error", () => undefined);
    cleanups.push(() => session.destroy());
    const results = await unfinishedStreams(session, 400, 4 * MiB, 3.5 * MiB);
    expect(results.every(endedByALimit), JSON.stringify(statusCounts(results))).toBe(true);
    expect(Math.max(...results.map((r) => r.afterMs))).toBeLessThan(10_000);
    const { peak, slowest, failures } = await stop();
    expect(failures).toBe(0);
    expect(slowest).toBeLessThan(1_000);
    expect(peak - before).toBeLessThan(200);
  });

  it("bounds and then ends streams whose messages trickle in and stop part-way under the size limit", async () => {
    const before = await rssMiB(pid());
    const stop = watch(pid(), clients as CsiClients);
    cleanups.push(() => void stop());
    // Four connections, each with as many streams as it may open; each stream sends all but 16 KiB of a message of
    // the largest size, 16 KiB every 20 ms, then stops and never ends.
    const piece = Buffer.alloc(16 * 1024);
    const perConnection = MAX_CONCURRENT_STREAMS;
    const streams = Array.from({ length: 4 }, async () => {
      // Uncapped client session memory, as in the test above: a Node client past its own cap drops answers.
      const session = http2Connect("http://localhost", {
        createConnection: () => netConnect(socket),
        maxSessionMemory: Number.MAX_SAFE_INTEGER,
      });
      session.on("error", () => undefined);
      cleanups.push(() => session.destroy());
      await new Promise((resolve) => session.once("remoteSettings", resolve));
      return Promise.all(
        Array.from({ length: perConnection }, () => {
          const req = session.request({ ":method": "POST", ":path": PROBE, "content-type": "application/grpc", te: "trailers" });
          req.on("error", () => undefined);
          cleanups.push(() => req.destroy());
          const prefix = Buffer.alloc(5);
          prefix.writeUInt32BE(MAX_RECEIVE_MESSAGE_BYTES, 1);
          req.write(prefix);
          let pieces = MAX_RECEIVE_MESSAGE_BYTES / piece.length - 1;
          const timer = setInterval(() => {
            if (pieces-- <= 0 || req.closed) clearInterval(timer);
            else req.write(piece);
          }, 20);
          cleanups.push(() => clearInterval(timer));
          return streamEnd(req);
        }),
      );
    });
    const results = (await Promise.all(streams)).flat();
    expect(results.every(endedByALimit), JSON.stringify(statusCounts(results))).toBe(true);
    expect(Math.max(...results.map((r) => r.afterMs))).toBeLessThan(UNFINISHED_REQUEST_TIMEOUT_MS + 5_000);
    const { peak, slowest, failures } = await stop();
    expect(failures).toBe(0);
    expect(slowest).toBeLessThan(1_000);
    // At most 8 MiB per connection is held at once (MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION): 32 MiB for four connections.
    expect(peak - before).toBeLessThan(100);
  });
});
