// @module-tag needs-root
import { join } from "node:path";
import { isMessage, type DescService, type Message } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { Controller, ControllerPublishVolumeRequestSchema, Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { startDriver, type DriverProcess } from "../support/driver-process.js";
import { FuzzCaller, unixTransport } from "../support/fuzz/fuzz-caller.js";
import { messageArbitrary, type FuzzVocabulary } from "../support/fuzz/message-arbitrary.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { mountCapability } from "../driver/controller-harness.js";

// The DigitalOcean controller (the built driver in controller mode, against the project's API simulator)
// under the same descriptor-built requests as the local backend: it must stay up, answer in time and only
// with codes the spec allows, whatever the API is asked. FUZZ_SEED and FUZZ_RUNS as in rpc-fuzz.test.ts.

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_204) + 7;
const RUNS = Number(process.env.FUZZ_RUNS ?? 12);
const CALL_BOUND_MS = 20_000;
const SERVICES: readonly DescService[] = [Identity, Controller];

let dir: string;
let sim: DoSimulator | undefined;
let driver: DriverProcess | undefined;
let clients: CsiClients;
let caller: FuzzCaller;
let closeTransport: (() => void) | undefined;
let vocabulary: FuzzVocabulary;
const attached = new Map<string, { volumeId: string; nodeId: string }>();

function remember(request: Message): void {
  if (isMessage(request, ControllerPublishVolumeRequestSchema))
    attached.set(`${request.volumeId}\n${request.nodeId}`, { volumeId: request.volumeId, nodeId: request.nodeId });
}

beforeAll(async () => {
  dir = await makeTestDir("fuzz-do");
  sim = await DoSimulator.start({ byIdDir: join(dir, "by-id"), dataDir: join(dir, "sim") });
  driver = await startDriver(join(dir, "csi.sock"), [
    "--token",
    "fuzz",
    "--region",
    sim.region,
    "--url",
    sim.url,
    "--alpha-features",
    "all",
    "--log-level",
    "error",
  ]);
  clients = connectCsi(driver.endpoint);
  const connection = unixTransport(join(dir, "csi.sock"));
  caller = new FuzzCaller(connection.transport, CALL_BOUND_MS, remember);
  closeTransport = connection.close;
  const { volume } = await clients.controller.createVolume({
    name: "fuzz-base",
    volumeCapabilities: [mountCapability()],
    capacityRange: { requiredBytes: 1024n ** 3n },
  });
  const volumeId = volume?.volumeId ?? "";
  const { snapshot } = await clients.controller.createSnapshot({ name: "fuzz-snap", sourceVolumeId: volumeId });
  vocabulary = {
    pathRoot: dir,
    paths: [join(dir, "paths", "p")],
    ids: [volumeId, snapshot?.snapshotId ?? "", "00000000-0000-0000-0000-000000000000"],
    nodeIds: [String(sim.localDropletId)],
    marker: "fzdo",
  };
}, 60_000);

afterAll(async () => {
  closeTransport?.();
  clients?.close();
  await driver?.stop("SIGKILL");
  await sim?.stop();
  if (dir !== undefined) await removeTestDir(dir);
});

describe("DigitalOcean controller fuzzing (fast-check, API simulator)", () => {
  for (const [index, service] of SERVICES.entries()) {
    it(`${service.name}: generated requests to every method`, { timeout: 120_000 + RUNS * 20 * 1_000 }, async () => {
      for (const [m, method] of service.methods.entries()) {
        await fc.assert(
          fc.asyncProperty(messageArbitrary(method.input, vocabulary), (request) => caller.call(method, request)),
          { seed: SEED + index * 100 + m, numRuns: RUNS },
        );
        expect(driver?.child.exitCode ?? driver?.child.signalCode ?? null, driver?.stderr().slice(-4000)).toBeNull();
        expect((await clients.identity.probe({}, { timeoutMs: 10_000 })).ready ?? true).toBe(true);
      }
    });
  }

  it("everything the fuzz made can be deleted through the driver", { timeout: 120_000 }, async () => {
    if (process.env.FUZZ_RUNS !== undefined) process.stdout.write(`${caller.summary()}\n`);
    expect(caller.codesSeen()).toContain("OK");
    for (const a of attached.values())
      await clients.controller.controllerUnpublishVolume(a).catch((err: unknown) => {
        if (!(err instanceof ConnectError) || err.code !== Code.NotFound) throw err;
      });
    for (const entry of (await clients.controller.listSnapshots({})).entries)
      await clients.controller.deleteSnapshot({ snapshotId: entry.snapshot?.snapshotId ?? "" });
    for (const entry of (await clients.controller.listVolumes({})).entries)
      await clients.controller.deleteVolume({ volumeId: entry.volume?.volumeId ?? "" });
    expect((await clients.controller.listVolumes({})).entries).toEqual([]);
  });
});
