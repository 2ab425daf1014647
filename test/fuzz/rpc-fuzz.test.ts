// @module-tag needs-root
import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { isMessage, toBinary, type DescMethod, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { volumesDir, snapshotsDir } from "../../src/backend/local/layout.js";
import {
  Controller,
  ControllerPublishVolumeRequestSchema,
  GroupController,
  Identity,
  Node,
  NodePublishVolumeRequestSchema,
  NodeStageVolumeRequestSchema,
} from "../../src/gen/csi/v1/csi_pb.js";
import { startDriver, type DriverProcess } from "../support/driver-process.js";
import { FuzzCaller, unixTransport } from "../support/fuzz/fuzz-caller.js";
import { changesOutside, snapshotHost, type HostSnapshot } from "../support/fuzz/host-watch.js";
import { messageArbitrary, type FuzzVocabulary } from "../support/fuzz/message-arbitrary.js";
import { grpcFrame, rawGrpcRequest } from "../support/fuzz/raw-grpc.js";
import { allowedCodes, TABLED_METHODS } from "../support/fuzz/spec-codes.js";
import { loopDevicesUnder, mountsUnder } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, mountCapability } from "../driver/controller-harness.js";

// Every RPC of Identity, Controller, Node and GroupController, with requests built from the message
// descriptors, and raw garbage as the gRPC message bytes, against the built driver (local backend,
// all-in-one). The process must stay alive, answer every call in time with a code the spec allows, and
// create or remove nothing outside the directory it was given. FUZZ_SEED and FUZZ_RUNS (calls per
// method) make a longer run: FUZZ_RUNS=2000 npm run fuzz.

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_204);
const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
/** Per-test time limit: generous per call, as a hang is caught per call (CALL_BOUND_MS). */
const TEST_TIMEOUT_MS = 120_000 + RUNS * 20 * 1_000;
/** A call that takes longer than this is a hang (the driver's own slowest step, mkfs, takes well under it). */
const CALL_BOUND_MS = 20_000;
const NODE_ID = "fuzz-node";
const SERVICES: readonly DescService[] = [Identity, Controller, Node, GroupController];

let dir: string;
let sandbox: string;
let dataDir: string;
let driver: DriverProcess | undefined;
let clients: CsiClients;
let caller: FuzzCaller;
let closeTransport: (() => void) | undefined;
let before: HostSnapshot;
let vocabulary: FuzzVocabulary;
/** In every generated name; from the seed, so a counterexample replays exactly. */
const marker = `fz${(SEED >>> 0).toString(36)}`;

/** What the fuzz made that the teardown must undo through the driver. */
const staged = new Map<string, { volumeId: string; stagingTargetPath: string }>();
const published = new Map<string, { volumeId: string; targetPath: string }>();
const attached = new Map<string, { volumeId: string; nodeId: string }>();

function remember(request: Message): void {
  if (isMessage(request, NodeStageVolumeRequestSchema))
    staged.set(request.stagingTargetPath, { volumeId: request.volumeId, stagingTargetPath: request.stagingTargetPath });
  if (isMessage(request, NodePublishVolumeRequestSchema))
    published.set(request.targetPath, { volumeId: request.volumeId, targetPath: request.targetPath });
  if (isMessage(request, ControllerPublishVolumeRequestSchema))
    attached.set(`${request.volumeId}\n${request.nodeId}`, { volumeId: request.volumeId, nodeId: request.nodeId });
}

async function expectAlive(): Promise<void> {
  expect(
    driver?.child.exitCode ?? driver?.child.signalCode ?? null,
    `the driver died; its log:\n${driver?.stderr().slice(-4000)}`,
  ).toBeNull();
  const answer = await clients.identity.probe({}, { timeoutMs: 10_000 });
  expect(answer.ready ?? true).toBe(true);
}

beforeAll(async () => {
  dir = await makeTestDir("fuzz");
  sandbox = join(dir, "sandbox");
  dataDir = join(sandbox, "data");
  const paths = ["staging-1", "staging-2", "target-1", "target-2"].map((p) => join(sandbox, "paths", p));
  for (const p of paths.filter((p) => p.includes("staging"))) await mkdir(p, { recursive: true });
  // Entries beside the sandbox that nothing may touch.
  await mkdir(join(dir, "canary-dir"));
  await writeFile(join(dir, "canary-file"), "canary");
  before = await snapshotHost(sandbox);

  driver = await startDriver(join(sandbox, "csi.sock"), [
    "--backend",
    "local",
    "--mode",
    "all",
    "--data-dir",
    dataDir,
    "--node-id",
    NODE_ID,
    "--kubelet-dir",
    join(sandbox, "kubelet"),
    "--alpha-features",
    "all",
    "--log-level",
    "error",
  ]);
  clients = connectCsi(driver.endpoint);
  const connection = unixTransport(join(sandbox, "csi.sock"));
  caller = new FuzzCaller(connection.transport, CALL_BOUND_MS, remember);
  closeTransport = connection.close;

  // Real objects, so that some fuzzed requests reach past validation into the backend and the host.
  const capability = mountCapability();
  const { volume } = await clients.controller.createVolume({
    name: `${marker}-base`,
    volumeCapabilities: [capability],
    capacityRange: { requiredBytes: BigInt(16 * MiB) },
  });
  const volumeId = volume?.volumeId ?? "";
  const { snapshot } = await clients.controller.createSnapshot({ name: `${marker}-snap`, sourceVolumeId: volumeId });
  vocabulary = { pathRoot: sandbox, paths, ids: [volumeId, snapshot?.snapshotId ?? "", "missing-0123"], nodeIds: [NODE_ID], marker };
}, 60_000);

afterAll(async () => {
  closeTransport?.();
  clients?.close();
  await driver?.stop("SIGKILL");
  // Safety net only: the last test checks that the driver's own teardown left nothing.
  if (sandbox !== undefined) {
    for (const point of await mountsUnder(sandbox)) execFileSync("umount", ["-l", point]);
    for (const { device } of await loopDevicesUnder(sandbox)) execFileSync("losetup", ["-d", device]);
  }
  if (dir !== undefined) await removeTestDir(dir);
});

describe("RPC fuzzing (fast-check, seed from FUZZ_SEED)", () => {
  it("the spec's code table covers every method of the four services", () => {
    const methods = SERVICES.flatMap((s) => s.methods.map((m) => m.name));
    expect([...methods].sort()).toEqual([...TABLED_METHODS].sort());
  });

  for (const [index, service] of SERVICES.entries()) {
    it(`${service.name}: generated requests to every method`, { timeout: TEST_TIMEOUT_MS }, async () => {
      for (const [m, method] of service.methods.entries()) {
        await fc.assert(
          fc.asyncProperty(messageArbitrary(method.input, vocabulary), (request) => caller.call(method, request)),
          { seed: SEED + index * 100 + m, numRuns: RUNS },
        );
        await expectAlive();
      }
    });
  }

  it("raw garbage as the message bytes of every method", { timeout: TEST_TIMEOUT_MS }, async () => {
    const socket = join(sandbox, "csi.sock");
    const known = SERVICES.flatMap((s) =>
      s.methods.map((m) => ({ path: `/${s.typeName}/${m.name}`, method: m as DescMethod | undefined })),
    );
    const unknown = [
      { path: "/csi.v1.Controller/NoSuchMethod", method: undefined },
      { path: "/csi.v1.NoSuch/Probe", method: undefined },
    ];
    const target = fc.constantFrom(...known, ...unknown);
    // Well-framed garbage: the message bytes are anything, including a valid message of another type.
    const message = fc.oneof(
      fc.uint8Array({ maxLength: 256 }),
      fc
        .constantFrom(...SERVICES.flatMap((s) => s.methods))
        .chain((m) => messageArbitrary(m.input, vocabulary).map((request) => toBinary(m.input, request))),
    );
    // Broken framing: unframed bytes, a frame that promises more than it carries, a compressed flag without
    // an encoding. The gRPC protocol makes these INTERNAL ("protocol error"), so only an answer is required.
    const framing = fc.oneof(
      fc.uint8Array({ maxLength: 64 }).map((m) => Buffer.from(m)),
      fc.uint8Array({ minLength: 1, maxLength: 64 }).map((m) => grpcFrame(m).subarray(0, 5 + Math.floor(m.length / 2))),
      fc.uint8Array({ maxLength: 64 }).map((m) => grpcFrame(m, true)),
    );
    const body = fc.oneof(
      { arbitrary: message.map((m) => ({ bytes: grpcFrame(m), framed: true })), weight: 3 },
      { arbitrary: framing.map((bytes) => ({ bytes, framed: false })), weight: 1 },
    );
    await fc.assert(
      fc.asyncProperty(target, body, async ({ path, method }, { bytes, framed }) => {
        const answer = await rawGrpcRequest(socket, path, bytes, CALL_BOUND_MS);
        const what = `${path} with ${bytes.length} bytes ${bytes.subarray(0, 32).toString("hex")}`;
        if (answer.grpcStatus === undefined) throw new Error(`${what}: no gRPC status (${answer.failure ?? "stream ended"})`);
        if (!framed) return;
        const allowed = method === undefined ? new Set([Code.Unimplemented]) : allowedCodes(method);
        if (answer.grpcStatus !== 0 && !allowed.has(answer.grpcStatus))
          throw new Error(`${what}: answered ${Code[answer.grpcStatus] ?? answer.grpcStatus}`);
      }),
      { seed: SEED + 1000, numRuns: RUNS * 20 },
    );
    await expectAlive();
  });

  it("the driver's own teardown removes everything, and nothing outside the sandbox changed", { timeout: 120_000 }, async () => {
    await expectAlive();
    if (process.env.FUZZ_RUNS !== undefined) process.stdout.write(`${caller.summary()}\n`);
    // The generated requests reached past validation: some succeeded, and the answers were varied.
    const codes = caller.codesSeen();
    expect(codes).toContain("OK");
    expect(codes.size).toBeGreaterThanOrEqual(4);
    for (const p of published.values()) await clients.node.nodeUnpublishVolume(p);
    for (const s of staged.values()) await clients.node.nodeUnstageVolume(s);
    for (const a of attached.values()) await clients.controller.controllerUnpublishVolume(a).catch(expectNotFound);
    for (const entry of (await clients.controller.listSnapshots({})).entries)
      await clients.controller.deleteSnapshot({ snapshotId: entry.snapshot?.snapshotId ?? "" });
    for (const entry of (await clients.controller.listVolumes({})).entries)
      await clients.controller.deleteVolume({ volumeId: entry.volume?.volumeId ?? "" });
    expect(await mountsUnder(sandbox)).toEqual([]);
    expect(await loopDevicesUnder(sandbox)).toEqual([]);
    expect(await readdir(volumesDir(dataDir))).toEqual([]);
    expect(await readdir(snapshotsDir(dataDir))).toEqual([]);
    expect(await readFile(join(dir, "canary-file"), "utf8")).toBe("canary");
    expect(await changesOutside(sandbox, before, marker)).toEqual([]);
  });
});

function expectNotFound(err: unknown): void {
  if (!(err instanceof ConnectError) || err.code !== Code.NotFound) throw err;
}
