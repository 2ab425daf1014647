import { connect as http2Connect, type ClientHttp2Session, type OutgoingHttpHeaders } from "node:http2";
import { connect as netConnect } from "node:net";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { framedMessage } from "../../src/csi/grpc-wire.js";
import { CsiServer } from "../../src/csi/server.js";
import { MAX_STATUS_MESSAGE_BYTES, MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION } from "../../src/csi/transport-limits.js";
import { Code, InvalidArgument } from "../../src/errors.js";
import { Identity, Node, ProbeResponseSchema } from "../../src/gen/csi/v1/csi_pb.js";
import { captureLog } from "../support/log-capture.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

/**
 * The gRPC protocol as the server speaks it, request by request over raw HTTP/2: what it refuses before any
 * handler runs (and with which status), deadlines and cancellation, and the limits on what it sends.
 */

const PROBE = "/csi.v1.Identity/Probe";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const INFO = "/csi.v1.Identity/GetPluginInfo";

interface Answer {
  readonly httpStatus: number | undefined;
  readonly grpcStatus: string | undefined;
  readonly grpcMessage: string;
  readonly body: Buffer;
  /** The status came in the response headers (trailers-only), not in trailers. */
  readonly trailersOnly: boolean;
}

/** A request message with its gRPC prefix (the server's own framing), optionally marked compressed. */
function framed(message: Uint8Array, compressed = false): Buffer {
  const out = framedMessage(message);
  if (compressed) out[0] = 1;
  return out;
}

describe("the gRPC protocol of the server", () => {
  let dir: string;
  let server: CsiServer;
  let session: ClientHttp2Session;
  let slowCalls: { signal: AbortSignal }[];
  const { logger: log } = captureLog("warn");

  beforeEach(async () => {
    dir = await makeTestDir("grpc-protocol");
    slowCalls = [];
    server = await CsiServer.start({
      endpoint: { kind: "unix", path: join(dir, "csi.sock") },
      socketMode: 0o660,
      log,
      shutdownTimeoutMs: 2_000,
      routes: (router) => {
        router.service(Identity, {
          probe: () => ({ ready: true }),
          getPluginInfo: (_req, ctx) => {
            if (ctx.method !== INFO) throw new Error("wrong method");
            return { name: "test.csi.example.com", vendorVersion: "1", manifest: { big: "x".repeat(5 * 1024 * 1024) } };
          },
          getPluginCapabilities: (_req, ctx) =>
            new Promise((_resolve, reject) => {
              slowCalls.push(ctx);
              ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
            }),
        });
        router.service(Node, {
          nodeGetInfo: () => {
            throw InvalidArgument("%s", "é".repeat(20_000));
          },
        });
      },
    });
    const path = join(dir, "csi.sock");
    session = http2Connect("http://localhost", { createConnection: () => netConnect(path) });
    session.on("error", () => {});
  });

  afterEach(async () => {
    session.destroy();
    await server.shutdown();
    await removeTestDir(dir);
  });

  /** One request with these headers and body chunks; `end` false leaves the client's side open. */
  function call(path: string, body: Buffer[], headers: OutgoingHttpHeaders = {}, end = true): Promise<Answer> {
    const req = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...headers,
    });
    for (const chunk of body) req.write(chunk);
    if (end) req.end();
    return new Promise((resolve, reject) => {
      let responseHeaders: Record<string, unknown> = {};
      let trailers: Record<string, unknown> | undefined;
      const chunks: Buffer[] = [];
      req.on("response", (h) => (responseHeaders = h));
      req.on("trailers", (t) => (trailers = t));
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("error", reject);
      req.on("close", () => {
        const status = trailers?.["grpc-status"] ?? responseHeaders["grpc-status"];
        const message = trailers?.["grpc-message"] ?? responseHeaders["grpc-message"];
        resolve({
          httpStatus: responseHeaders[":status"] as number | undefined,
          grpcStatus: status === undefined ? undefined : String(status),
          grpcMessage: message === undefined ? "" : decodeURIComponent(String(message)),
          body: Buffer.concat(chunks),
          trailersOnly: trailers === undefined && responseHeaders["grpc-status"] !== undefined,
        });
      });
    });
  }

  it("answers a unary call with one message and grpc-status 0 in trailers", async () => {
    const answer = await call(PROBE, [framed(new Uint8Array())]);
    expect(answer.httpStatus).toBe(200);
    expect(answer.grpcStatus).toBe("0");
    expect(answer.trailersOnly).toBe(false);
    expect(answer.body.readUInt32BE(1)).toBe(answer.body.length - 5);
    expect(fromBinary(ProbeResponseSchema, answer.body.subarray(5)).ready).toBe(true);
  });

  it("reads a message split over many DATA frames, prefix included", async () => {
    // A field ProbeRequest does not have (number 1, a string): kept as an unknown field, not an error.
    const bytes = framed(new Uint8Array([0x0a, 0x03, 0x61, 0x62, 0x63]));
    const answer = await call(
      PROBE,
      [...bytes].map((b) => Buffer.from([b])),
    );
    expect(answer.grpcStatus).toBe("0");
  });

  it("refuses what is not a gRPC request: another HTTP method (405), another content type (415)", async () => {
    expect((await call(PROBE, [], { ":method": "GET" })).httpStatus).toBe(405);
    expect((await call(PROBE, [framed(new Uint8Array())], { "content-type": "application/json" })).httpStatus).toBe(415);
  });

  it("answers UNIMPLEMENTED, trailers only, for an unknown method and for a compression it does not offer", async () => {
    const unknown = await call("/csi.v1.Identity/Nope", [framed(new Uint8Array())]);
    expect(unknown.grpcStatus).toBe(String(Code.Unimplemented));
    expect(unknown.trailersOnly).toBe(true);
    expect(unknown.grpcMessage).toMatch(/\/csi\.v1\.Identity\/Nope is not served/);
    const gzip = await call(PROBE, [framed(new Uint8Array())], { "grpc-encoding": "gzip" });
    expect(gzip.grpcStatus).toBe(String(Code.Unimplemented));
    expect(gzip.grpcMessage).toMatch(/send identity/);
  });

  it("answers INTERNAL for a malformed request stream: compressed flag, two messages, none, one cut short, a bad grpc-timeout", async () => {
    const cases: [string, Buffer[], OutgoingHttpHeaders, RegExp][] = [
      ["compressed", [framed(new Uint8Array([1]), true)], {}, /uncompressed/],
      ["two messages", [framed(new Uint8Array()), framed(new Uint8Array())], {}, /more than one message/],
      ["no message", [], {}, /carries no message/],
      ["cut short", [framed(new Uint8Array(10)).subarray(0, 9)], {}, /middle of its message/],
      ["prefix cut short", [Buffer.from([0, 0])], {}, /middle of its message/],
      ["bad timeout", [framed(new Uint8Array())], { "grpc-timeout": "soon" }, /grpc-timeout/],
      ["timeout too long", [framed(new Uint8Array())], { "grpc-timeout": "123456789S" }, /grpc-timeout/],
    ];
    for (const [name, body, headers, message] of cases) {
      const answer = await call(PROBE, body, headers);
      expect(answer.grpcStatus, name).toBe(String(Code.Internal));
      expect(answer.grpcMessage, name).toMatch(message);
    }
    // The connection still serves.
    expect((await call(PROBE, [framed(new Uint8Array())])).grpcStatus).toBe("0");
  });

  it("answers INVALID_ARGUMENT for bytes that are not the method's message", async () => {
    const answer = await call(PROBE, [framed(new Uint8Array([0xff, 0xff, 0xff]))]);
    expect(answer.grpcStatus).toBe(String(Code.InvalidArgument));
    expect(answer.grpcMessage).toMatch(/not a valid csi\.v1\.ProbeRequest/);
  });

  it("refuses a response larger than clients accept with RESOURCE_EXHAUSTED, not a message they would reject", async () => {
    const answer = await call(INFO, [framed(new Uint8Array())]);
    expect(answer.grpcStatus).toBe(String(Code.ResourceExhausted));
    expect(answer.grpcMessage).toMatch(/max_entries/);
    expect(answer.body.length).toBe(0);
  });

  it("cuts a status message to what fits a header, percent-encoded", async () => {
    const answer = await call("/csi.v1.Node/NodeGetInfo", [framed(new Uint8Array())]);
    expect(answer.grpcStatus).toBe(String(Code.InvalidArgument));
    expect(encodeURI(answer.grpcMessage).length).toBeLessThanOrEqual(MAX_STATUS_MESSAGE_BYTES);
  });

  it("stops a handler at the caller's grpc-timeout with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const answer = await call("/csi.v1.Identity/GetPluginCapabilities", [framed(new Uint8Array())], { "grpc-timeout": "200m" });
    expect(answer.grpcStatus).toBe(String(Code.DeadlineExceeded));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(slowCalls[0]?.signal.aborted).toBe(true);
  });

  it("bounds what a connection's unfinished requests hold, and releases what a cancelled one held", async () => {
    const prefix = Buffer.alloc(5);
    prefix.writeUInt32BE(250 * 1024, 1);
    const partial = Buffer.concat([prefix, Buffer.alloc(240 * 1024)]);
    /** Until the client has handed the request's bytes over (or the server answered it), at most 2 s. */
    const arrived = async (req: ReturnType<ClientHttp2Session["request"]>) => {
      for (let i = 0; i < 200 && !req.closed && req.writableLength > 0; i++) await sleep(10);
    };
    // 40 requests of 240 KiB each, never ended: 9.6 MiB, more than a connection may hold (8 MiB).
    const refusals: (string | undefined)[] = [];
    const open = Array.from({ length: 40 }, (_, i) => {
      const req = session.request({ ":method": "POST", ":path": PROBE, "content-type": "application/grpc", te: "trailers" });
      req.on("error", () => {});
      req.on("response", (h) => {
        refusals[i] = decodeURIComponent(String(h["grpc-message"] ?? ""));
      });
      req.write(partial);
      return req;
    });
    await Promise.all(open.map(arrived));
    await sleep(300);
    const refused = refusals.filter((m) => m?.includes("already hold"));
    // No more requests held than fit the connection's budget; the others answered at once.
    expect(40 - refused.length).toBeLessThanOrEqual(Math.floor(MAX_UNFINISHED_REQUEST_BYTES_PER_CONNECTION / (240 * 1024)));
    expect(refused.length).toBeLessThan(40);
    // Cancelling the held ones releases what they held: a whole request of 200 KiB is then served.
    for (const req of open) req.close(8);
    await sleep(200);
    const whole = framed(new Uint8Array([0x0a, 0x83, 0xc0, 0x0c, ...new Uint8Array(200 * 1024 + 3)])); // unknown field 1, 200 KiB + 3
    const answer = await call(PROBE, [whole]);
    expect(answer.grpcStatus, answer.grpcMessage).toBe("0");
  });

  it("cancels the handler when the caller resets its stream", async () => {
    const req = session.request({
      ":method": "POST",
      ":path": "/csi.v1.Identity/GetPluginCapabilities",
      "content-type": "application/grpc",
    });
    req.on("error", () => {});
    req.end(framed(new Uint8Array()));
    for (let i = 0; i < 100 && slowCalls.length === 0; i++) await sleep(10);
    expect(slowCalls).toHaveLength(1);
    req.close(8); // CANCEL
    const signal = slowCalls[0]?.signal;
    for (let i = 0; i < 100 && !signal?.aborted; i++) await sleep(10);
    expect(signal?.aborted).toBe(true);
    expect(String(signal?.reason)).toMatch(/CANCELLED|cancelled/i);
  });
});
