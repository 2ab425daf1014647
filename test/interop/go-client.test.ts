import { execFile, spawn } from "node:child_process";
import { join, resolve } from "node:path";
import { promisify } from "node:util";
import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GetPluginInfoResponseSchema,
  NodeGetCapabilitiesResponseSchema,
  NodeGetInfoResponseSchema,
  NodeGetVolumeStatsRequestSchema,
  NodeStageVolumeRequestSchema,
  ProbeResponseSchema,
} from "../../src/gen/csi/v1/csi_pb.js";
import { Code } from "../../src/errors.js";
import { MAX_CONCURRENT_STREAMS } from "../../src/csi/transport-limits.js";
import { RUNTIMES, startDriver, type DriverProcess } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

/**
 * The built driver against a real grpc-go client (test/interop/go-client/main.go), as kubelet and the
 * kubernetes-csi sidecars are: both ways they dial a unix socket (the socket path as :authority, as kubelet
 * before 1.26 and older csi-lib-utils send it, and localhost), answers, status codes, deadlines, the
 * receive limit, a sidecar's worth of calls at once and more than a connection has streams, and a graceful stop. Go and grpc-go
 * come from Debian (golang-go, golang-google-grpc-dev: grpc-go 1.33), which CI installs; elsewhere the
 * test is skipped with the packages to install.
 */

const run = promisify(execFile);
const GO_SOURCE = resolve("test/interop/go-client/main.go");
const GO_PACKAGES = "golang-go golang-google-grpc-dev";
const GOPATH = "/usr/share/gocode";

async function goAvailable(): Promise<boolean> {
  try {
    await run("go", ["version"]);
    await run("test", ["-d", join(GOPATH, "src/google.golang.org/grpc")]);
    return true;
  } catch {
    return false;
  }
}

const available = await goAvailable();
if (!available && process.env.CI) throw new Error(`CI installs Go and grpc-go for this test (${GO_PACKAGES}); they are missing`);
if (!available) process.stderr.write(`test/interop skipped: install ${GO_PACKAGES} (npm test does as root on Debian)\n`);

interface GoAnswer {
  readonly code: number;
  readonly message: string;
  readonly response: string;
  readonly ok: number;
}

interface GoCall {
  readonly method: string;
  readonly request?: Uint8Array;
  readonly timeoutMs?: number;
  readonly repeat?: number;
}

/** Runs the Go client once over a list of calls on one connection; one answer per call. */
async function goCalls(binary: string, socket: string, dial: "legacy" | "localhost", calls: readonly GoCall[]): Promise<GoAnswer[]> {
  const child = spawn(binary, ["-socket", socket, "-dial", dial], { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const lines = calls.map((c) =>
    JSON.stringify({
      method: c.method,
      request: Buffer.from(c.request ?? []).toString("hex"),
      timeoutMs: c.timeoutMs ?? 10_000,
      repeat: c.repeat ?? 1,
    }),
  );
  child.stdin.end(`${lines.join("\n")}\n`);
  const code = await new Promise<number | null>((done) => child.once("exit", done));
  if (code !== 0) throw new Error(`the Go client exited with ${code}: ${stderr}`);
  return stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as GoAnswer);
}

function encode<D extends DescMessage>(schema: D, init: MessageInitShape<D>): Uint8Array {
  return toBinary(schema, create(schema, init));
}

describe.skipIf(!available)("a grpc-go client (kubelet, the sidecars) against the built driver", () => {
  let dir: string;
  let binary: string;

  beforeAll(async () => {
    dir = await makeTestDir("go-interop");
    binary = join(dir, "go-client");
    await run("go", ["build", "-o", binary, GO_SOURCE], {
      env: { ...process.env, GO111MODULE: "off", GOPATH, GOCACHE: "/tmp/do-csi-go-cache", GOFLAGS: "" },
      timeout: 240_000,
    });
  }, 300_000);

  afterAll(async () => {
    await removeTestDir(dir);
  });

  for (const runtime of RUNTIMES) {
    describe(runtime.name, () => {
      for (const dial of ["legacy", "localhost"] as const) {
        it(`dialled ${dial === "legacy" ? "with the socket path as :authority" : "with :authority localhost"}: answers, codes, deadlines, limits`, async () => {
          const socket = join(dir, `${dial}-${runtime.node === process.execPath ? "runner" : "image"}.sock`);
          const driver: DriverProcess = await startDriver(
            socket,
            ["--backend", "local", "--mode", "node", "--node-id", "n1", "--data-dir", join(dir, `data-${dial}`)],
            { node: runtime.node },
          );
          try {
            const tooLarge = encode(NodeGetVolumeStatsRequestSchema, { volumeId: "v".repeat(300 * 1024), volumePath: "/x" });
            const answers = await goCalls(binary, socket, dial, [
              { method: "/csi.v1.Identity/Probe" },
              { method: "/csi.v1.Identity/GetPluginInfo" },
              { method: "/csi.v1.Node/NodeGetCapabilities" },
              { method: "/csi.v1.Node/NodeGetInfo" },
              { method: "/csi.v1.Node/NodeStageVolume", request: encode(NodeStageVolumeRequestSchema, {}) },
              { method: "/csi.v1.Node/Nope" },
              { method: "/csi.v1.Identity/Probe", request: Uint8Array.from([0xff, 0xff, 0xff]) },
              { method: "/csi.v1.Node/NodeGetVolumeStats", request: tooLarge },
              { method: "/csi.v1.Identity/Probe" },
              { method: "/csi.v1.Node/NodeStageVolume", request: encode(NodeStageVolumeRequestSchema, { volumeId: "é".repeat(100_000) }) },
              { method: "/csi.v1.Identity/Probe", timeoutMs: 1 },
              { method: "/csi.v1.Identity/Probe", repeat: 100 },
            ]);
            const [probe, info, caps, nodeInfo, stage, unknown, garbage, oversized, after, longStatus, hurried, many] = answers;
            const decode = <D extends DescMessage>(schema: D, a: GoAnswer | undefined) => {
              expect(a?.code, a?.message).toBe(0);
              return fromBinary(schema, Buffer.from(a?.response ?? "", "hex"));
            };
            expect(decode(ProbeResponseSchema, probe).ready).toBe(true);
            expect(decode(GetPluginInfoResponseSchema, info).name).toBe("local.csi.do-csi-plugin.io");
            expect(decode(NodeGetCapabilitiesResponseSchema, caps).capabilities.length).toBeGreaterThan(0);
            expect(decode(NodeGetInfoResponseSchema, nodeInfo).nodeId).toBe("n1");
            expect(stage?.code).toBe(Code.InvalidArgument);
            expect(stage?.message).not.toBe("");
            expect(unknown?.code).toBe(Code.Unimplemented);
            expect(garbage?.code).toBe(Code.InvalidArgument);
            expect(oversized?.code).toBe(Code.ResourceExhausted);
            expect(after?.code).toBe(0); // the same connection still serves
            expect(longStatus?.code).toBe(Code.InvalidArgument);
            expect([0, Code.DeadlineExceeded]).toContain(hurried?.code);
            expect(many?.ok, many?.message).toBe(100); // external-provisioner's default number of workers
            // Refused before the client finished sending it, then at once more calls than a connection has streams:
            // grpc-go counts the refused stream as closed when its status arrives, so the server must have reset it,
            // or the next stream is one over the limit and nghttp2 closes the connection (every call then fails).
            // At the limit, Node's HTTP/2 may still refuse a stream now and then with ENHANCE_YOUR_CALM
            // (RESOURCE_EXHAUSTED to the caller; see MAX_CONCURRENT_STREAMS), which a client retries.
            const burstSize = MAX_CONCURRENT_STREAMS + 72;
            const [refused, burst] = await goCalls(binary, socket, dial, [
              { method: "/csi.v1.Node/NodeGetVolumeStats", request: tooLarge },
              { method: "/csi.v1.Identity/Probe", repeat: burstSize },
            ]);
            expect(refused?.code).toBe(Code.ResourceExhausted);
            expect(burst?.ok, burst?.message).toBeGreaterThanOrEqual(burstSize - 3);
            if (burst?.ok !== burstSize) expect(burst?.code, burst?.message).toBe(Code.ResourceExhausted);
            if (dial === "legacy") expect(driver.stderr()).toMatch(/relaying its requests with :authority localhost/);
            else expect(driver.stderr()).not.toMatch(/relaying/);
          } finally {
            expect(await driver.stop("SIGTERM")).toBe(0);
          }
        }, 60_000);
      }
    });
  }

  it("a client connected when the driver stops sees the connection end, and the driver exits 0", async () => {
    const socket = join(dir, "stop.sock");
    const driver = await startDriver(socket, [
      "--backend",
      "local",
      "--mode",
      "node",
      "--node-id",
      "n1",
      "--data-dir",
      join(dir, "data-stop"),
    ]);
    const child = spawn(binary, ["-socket", socket, "-dial", "localhost"], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
    child.stdin.write(`${JSON.stringify({ method: "/csi.v1.Identity/Probe", request: "", timeoutMs: 5000, repeat: 1 })}\n`);
    for (let i = 0; i < 200 && !stdout.includes("\n"); i++) await new Promise((r) => setTimeout(r, 25));
    expect(JSON.parse(stdout.split("\n")[0] ?? "{}").code).toBe(0);
    expect(await driver.stop("SIGTERM")).toBe(0);
    child.stdin.end(`${JSON.stringify({ method: "/csi.v1.Identity/Probe", request: "", timeoutMs: 2000, repeat: 1 })}\n`);
    await new Promise((done) => child.once("exit", done));
    const second = JSON.parse(stdout.trim().split("\n")[1] ?? "{}") as GoAnswer;
    expect([Code.Unavailable, Code.DeadlineExceeded]).toContain(second.code);
  }, 60_000);
});
