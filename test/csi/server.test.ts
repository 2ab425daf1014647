import { execFileSync } from "node:child_process";
import { connect as http2Connect, constants as h2 } from "node:http2";
import { createServer as createNetServer, connect as netConnect, type Server as NetServer } from "node:net";
import { lstat, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { CsiServer } from "../../src/csi/server.js";
import { InFlight } from "../../src/driver/inflight.js";
import { FailedPrecondition } from "../../src/errors.js";
import { GetPluginInfoResponseSchema, Identity, Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { captureLog } from "../support/log-capture.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function identityRoutes(extra: Partial<Parameters<typeof Object.assign>[0]> = {}) {
  return {
    getPluginInfo: () => ({ name: "test.csi.example.com", vendorVersion: "1.0" }),
    getPluginCapabilities: () => ({}),
    probe: () => ({ ready: true }),
    ...extra,
  };
}

/** One unary gRPC call over raw HTTP/2 with a chosen :authority, as a Go client would send it. */
async function rawGrpcCall(socket: string, path: string, authority: string, body: Uint8Array = new Uint8Array(0)) {
  const session = http2Connect("http://localhost", { createConnection: () => netConnect(socket) });
  try {
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    Buffer.from(body).copy(frame, 5);
    const req = session.request({
      [h2.HTTP2_HEADER_METHOD]: "POST",
      [h2.HTTP2_HEADER_PATH]: path,
      [h2.HTTP2_HEADER_AUTHORITY]: authority,
      [h2.HTTP2_HEADER_SCHEME]: "http",
      "content-type": "application/grpc",
      te: "trailers",
      "user-agent": "grpc-go/1.64.0",
    });
    req.end(frame);
    const chunks: Buffer[] = [];
    let headers: Record<string, unknown> = {};
    let trailers: Record<string, unknown> = {};
    req.on("response", (h) => {
      headers = h;
    });
    req.on("trailers", (t) => {
      trailers = t;
    });
    req.on("data", (c: Buffer) => chunks.push(c));
    await new Promise<void>((resolve, reject) => {
      req.on("end", resolve);
      req.on("error", reject);
    });
    const data = Buffer.concat(chunks);
    const status = String(trailers["grpc-status"] ?? headers["grpc-status"] ?? "");
    return { status: headers[":status"], grpcStatus: status, message: data.length >= 5 ? data.subarray(5) : undefined, headers, trailers };
  } finally {
    session.close();
  }
}

describe("CsiServer", () => {
  let dir: string;
  let served: ServedRoutes | undefined;
  const log = captureLog("debug");

  beforeEach(async () => {
    dir = await makeTestDir("server");
    log.lines.length = 0;
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await removeTestDir(dir);
  });

  describe("unix socket lifecycle", () => {
    it("replaces a stale socket left by a dead process", async () => {
      const path = join(dir, "csi.sock");
      // A process that bound the socket and died without removing it.
      execFileSync("python3", ["-c", `import socket; s=socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(path)})`]);
      expect((await lstat(path)).isSocket()).toBe(true);
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes()));
      const info = await served.clients.identity.getPluginInfo({});
      expect(info.name).toBe("test.csi.example.com");
    });

    it("refuses to start while another live process serves the socket", async () => {
      const path = join(dir, "csi.sock");
      const other: NetServer = createNetServer(() => undefined);
      await new Promise<void>((r) => other.listen(path, r));
      try {
        await expect(
          CsiServer.start({
            endpoint: { kind: "unix", path },
            socketMode: 0o660,
            log: log.logger,
            routes: () => undefined,
            shutdownTimeoutMs: 1000,
          }),
        ).rejects.toThrow(/another process is already serving on .*csi\.sock/);
        expect((await lstat(path)).isSocket()).toBe(true); // left alone
      } finally {
        await new Promise<void>((r) => other.close(() => r()));
      }
    });

    it("refuses to replace a path that is not a socket", async () => {
      const path = join(dir, "csi.sock");
      await writeFile(path, "user data");
      await expect(
        CsiServer.start({
          endpoint: { kind: "unix", path },
          socketMode: 0o660,
          log: log.logger,
          routes: () => undefined,
          shutdownTimeoutMs: 1000,
        }),
      ).rejects.toThrow(/exists and is not a socket/);
      expect(await readFile(path, "utf8")).toBe("user data");
    });

    it("applies the socket mode, creates the directory and removes the socket on shutdown", async () => {
      const nested = join(dir, "plugins", "driver");
      const path = join(nested, "csi.sock");
      const server = await CsiServer.start({
        endpoint: { kind: "unix", path },
        socketMode: 0o600,
        log: log.logger,
        routes: (r) => r.service(Identity, identityRoutes()),
        shutdownTimeoutMs: 1000,
      });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      await server.shutdown();
      await expect(lstat(path)).rejects.toThrow(/ENOENT/);
    });

    it("serves on TCP with an ephemeral port", async () => {
      const server = await CsiServer.start({
        endpoint: { kind: "tcp", host: "127.0.0.1", port: 0 },
        socketMode: 0o660,
        log: log.logger,
        routes: (r) => r.service(Identity, identityRoutes()),
        shutdownTimeoutMs: 1000,
      });
      const endpoint = server.endpoint;
      expect(endpoint.kind === "tcp" && endpoint.port > 0).toBe(true);
      const { connectCsi } = await import("../../src/csi/client.js");
      const clients = connectCsi(endpoint.kind === "tcp" ? `tcp://127.0.0.1:${endpoint.port}` : "");
      try {
        expect((await clients.identity.probe({})).ready).toBe(true);
      } finally {
        clients.close();
        await server.shutdown();
      }
    });
  });

  describe("interoperability with Go gRPC clients", () => {
    it.each([
      ["the socket path", (p: string) => p],
      ["localhost", () => "localhost"],
      ["a percent-encoded path", (p: string) => encodeURIComponent(p)],
    ])("accepts %s as :authority", async (_label, authority) => {
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes()));
      const socket = join(dir, "csi.sock");
      const res = await rawGrpcCall(socket, "/csi.v1.Identity/GetPluginInfo", authority(socket));
      expect(res.status).toBe(200);
      expect(res.grpcStatus).toBe("0");
      expect(res.message && fromBinary(GetPluginInfoResponseSchema, res.message).name).toBe("test.csi.example.com");
    });

    it("serves many concurrent and sequential calls on one connection that sends the socket path as :authority", async () => {
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes()));
      const socket = join(dir, "csi.sock");
      const session = http2Connect("http://localhost", { createConnection: () => netConnect(socket) });
      try {
        const call = () =>
          new Promise<string>((resolve, reject) => {
            const req = session.request({
              ":method": "POST",
              ":path": "/csi.v1.Identity/GetPluginInfo",
              ":authority": socket,
              "content-type": "application/grpc",
              te: "trailers",
            });
            const chunks: Buffer[] = [];
            let status = "";
            req.on("trailers", (t) => {
              status = String(t["grpc-status"]);
            });
            req.on("data", (c: Buffer) => chunks.push(c));
            req.on("end", () =>
              status === "0"
                ? resolve(fromBinary(GetPluginInfoResponseSchema, Buffer.concat(chunks).subarray(5)).name)
                : reject(new Error(`grpc-status ${status}`)),
            );
            req.on("error", reject);
            req.end(Buffer.alloc(5));
          });
        // The client indexes :authority in its HPACK table after the first request: later ones refer to it.
        for (let i = 0; i < 5; i++) expect(await call()).toBe("test.csi.example.com");
        const names = await Promise.all(Array.from({ length: 20 }, call));
        expect(new Set(names)).toEqual(new Set(["test.csi.example.com"]));
      } finally {
        session.close();
      }
      expect(log.records().some((r) => String(r.msg).includes("relaying its requests"))).toBe(true);
    });

    it("answers an unknown service with a gRPC UNIMPLEMENTED status, not an HTTP error", async () => {
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes()));
      const res = await rawGrpcCall(join(dir, "csi.sock"), "/csi.v0.Identity/Probe", "localhost");
      expect(res.status).toBe(200);
      expect(res.grpcStatus).toBe(String(Code.Unimplemented));
    });

    it("survives a malformed request and keeps serving", async () => {
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes()));
      const socket = join(dir, "csi.sock");
      const garbage = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]);
      const bad = await rawGrpcCall(socket, "/csi.v1.Identity/GetPluginInfo", "localhost", garbage);
      expect(bad.grpcStatus).not.toBe("0");
      expect(bad.grpcStatus).not.toBe("");
      expect((await served.clients.identity.probe({})).ready).toBe(true);
    });
  });

  describe("middleware", () => {
    it("answers UNIMPLEMENTED for methods of services not provided", async () => {
      served = await serveRoutes(dir, log.logger, (r) => {
        r.service(Identity, identityRoutes());
        r.service(Controller, {});
      });
      const err = await served.clients.controller.createVolume({ name: "v" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.Unimplemented);
    });

    it("turns a thrown non-status error into INTERNAL with its message, logged once", async () => {
      served = await serveRoutes(dir, log.logger, (r) =>
        r.service(
          Identity,
          identityRoutes({
            probe: () => {
              throw new Error("disk on fire");
            },
          }),
        ),
      );
      const err = (await served.clients.identity.probe({}).catch((e: unknown) => e)) as ConnectError;
      expect(err.code).toBe(Code.Internal);
      expect(err.rawMessage).toBe("disk on fire");
      const failures = log.records().filter((r) => r.msg === "call failed");
      expect(failures).toHaveLength(1);
      expect(failures[0]).toMatchObject({ method: "/csi.v1.Identity/Probe", code: "INTERNAL", error: "disk on fire" });
      expect(typeof failures[0]?.requestId).toBe("string");
      expect(typeof failures[0]?.durationMs).toBe("number");
      // The process is still fine.
      expect((await served.clients.identity.getPluginInfo({})).name).toBe("test.csi.example.com");
    });

    it("answers alike whether a handler returns, resolves, throws or rejects, at once or later", async () => {
      const later = <T>(f: () => T) => new Promise<void>((resolve) => setTimeout(resolve, 5)).then(f);
      const answers: Record<string, () => unknown> = {
        returns: () => ({ ready: true }),
        resolves: () => later(() => ({ ready: true })),
        throws: () => {
          throw new Error("fails at once");
        },
        rejects: () =>
          later(() => {
            throw new Error("fails later");
          }),
        "throws a status": () => {
          throw FailedPrecondition("not yet");
        },
      };
      let answer: () => unknown = () => ({});
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes({ probe: () => answer() })));
      const outcome = async (name: string) => {
        answer = answers[name] ?? (() => ({}));
        try {
          return { ready: (await served?.clients.identity.probe({}))?.ready };
        } catch (err) {
          return { code: (err as ConnectError).code, message: (err as ConnectError).rawMessage };
        }
      };
      expect(await outcome("returns")).toEqual({ ready: true });
      expect(await outcome("resolves")).toEqual({ ready: true });
      expect(await outcome("throws")).toEqual({ code: Code.Internal, message: "fails at once" });
      expect(await outcome("rejects")).toEqual({ code: Code.Internal, message: "fails later" });
      expect(await outcome("throws a status")).toEqual({ code: Code.FailedPrecondition, message: "not yet" });
      // Each call logged once, with its outcome.
      const ends = log.records().filter((r) => r.msg === "call finished" || r.msg === "call failed");
      expect(ends.map((r) => r.code)).toEqual(["OK", "OK", "INTERNAL", "INTERNAL", "FAILED_PRECONDITION"]);
    });

    it("writes exactly one line per successful call with method, code, duration and request id", async () => {
      served = await serveRoutes(dir, log.logger, (r) => r.service(Identity, identityRoutes()));
      await served.clients.identity.getPluginInfo({});
      await served.clients.identity.getPluginInfo({});
      const lines = log.records().filter((r) => r.msg === "call finished");
      expect(lines).toHaveLength(2);
      for (const line of lines) expect(line).toMatchObject({ method: "/csi.v1.Identity/GetPluginInfo", code: "OK", level: 30 });
      expect(lines[0]?.requestId).not.toBe(lines[1]?.requestId);
    });

    it("hands the caller's deadline to the handler as an AbortSignal", async () => {
      let sawAbort = false;
      served = await serveRoutes(dir, log.logger, (r) =>
        r.service(
          Identity,
          identityRoutes({
            probe: async (_req: unknown, ctx: { signal: AbortSignal }) => {
              await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
              sawAbort = true;
              throw new Error("stopped by deadline");
            },
          }),
        ),
      );
      const started = Date.now();
      const err = (await served.clients.identity.probe({}, { timeoutMs: 200 }).catch((e: unknown) => e)) as ConnectError;
      expect(err.code).toBe(Code.DeadlineExceeded);
      await sleep(100);
      expect(sawAbort).toBe(true);
      expect(Date.now() - started).toBeLessThan(5_000);
    });

    it("answers ABORTED for a concurrent operation on the same key and releases the key afterwards", async () => {
      const inflight = new InFlight();
      served = await serveRoutes(dir, log.logger, (r) =>
        r.service(Controller, {
          deleteVolume: async (req) =>
            inflight.run([`volume:${req.volumeId}`], "DeleteVolume", async () => {
              await sleep(300);
              if (req.volumeId === "fails") throw new Error("backend failed");
              return {};
            }),
        }),
      );
      const { controller } = served.clients;
      const first = controller.deleteVolume({ volumeId: "vol-1" });
      await sleep(50);
      const second = (await controller.deleteVolume({ volumeId: "vol-1" }).catch((e: unknown) => e)) as ConnectError;
      expect(second.code).toBe(Code.Aborted);
      expect(second.rawMessage).toMatch(/DeleteVolume is already in progress for volume:vol-1/);
      await Promise.all([first, controller.deleteVolume({ volumeId: "vol-2" })]); // other keys run concurrently
      await controller.deleteVolume({ volumeId: "vol-1" }); // released after success
      await expect(controller.deleteVolume({ volumeId: "fails" })).rejects.toThrow(/backend failed/);
      expect(inflight.size).toBe(0); // released after failure too
    });
  });

  describe("graceful shutdown", () => {
    it("lets an in-flight call finish, then stops accepting and removes the socket", async () => {
      let finished = false;
      served = await serveRoutes(dir, log.logger, (r) =>
        r.service(
          Identity,
          identityRoutes({
            probe: async () => {
              await sleep(400);
              finished = true;
              return { ready: true };
            },
          }),
        ),
      );
      const call = served.clients.identity.probe({});
      await sleep(100);
      const shutdown = served.server.shutdown();
      const res = await call;
      expect(res.ready).toBe(true);
      await shutdown;
      expect(finished).toBe(true);
      await expect(lstat(join(dir, "csi.sock"))).rejects.toThrow(/ENOENT/);
      served.clients.close();
      served = undefined;
    });

    it("cancels calls still running when the shutdown bound expires", async () => {
      let cancelled = false;
      served = await serveRoutes(
        dir,
        log.logger,
        (r) =>
          r.service(
            Identity,
            identityRoutes({
              probe: async (_req: unknown, ctx: { signal: AbortSignal }) => {
                await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
                cancelled = true;
                return { ready: false };
              },
            }),
          ),
        { shutdownTimeoutMs: 300 },
      );
      const call = served.clients.identity.probe({}).catch((e: unknown) => e);
      await sleep(50);
      const started = Date.now();
      await served.server.shutdown();
      expect(Date.now() - started).toBeLessThan(3_000);
      expect(cancelled).toBe(true);
      await call;
      served.clients.close();
      served = undefined;
    });
  });
});
