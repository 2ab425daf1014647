import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { parseCommandLine } from "../../src/cli/options.js";
import { controllerService } from "../../src/driver/controller.js";
import { InFlight } from "../../src/driver/inflight.js";
import { growOwnedStorage } from "../../src/driver/volume-growth.js";
import { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { Code, expectCode, mountCapability } from "../driver/controller-harness.js";
import { MemoryControllerBackend, MiB } from "../fakes/memory-controller-backend.js";

// With --node-deployment, NodeExpandVolume grows the volume's storage under the controller's key for the
// volume: never beside a snapshot, clone or deletion of it, and with ControllerExpandVolume's sizing rules.

let dir: string;
let served: ServedRoutes;
let backend: MemoryControllerBackend;
let inflight: InFlight;

beforeEach(async () => {
  dir = await makeTestDir("fast-node-owned-storage");
  const { config } = parseCommandLine(["--backend", "local", "--node-deployment", "--node-id", "node-1"], {}, "test");
  backend = new MemoryControllerBackend();
  inflight = new InFlight();
  const controller = controllerService({ config, backend, log: silentLogger, inflight });
  served = await serveRoutes(dir, silentLogger, (router) => router.service(Controller, controller));
});

afterEach(async () => {
  await served?.stop();
  await removeTestDir(dir);
});

const signal = new AbortController().signal;

describe("the node's storage growth with --node-deployment", () => {
  it("waits for no controller operation on the volume: ABORTED while a snapshot of it is being cut, then grows", async () => {
    const c = served.clients.controller;
    const { volume } = await c.createVolume({
      name: "v",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(64 * MiB) },
    });
    const volumeId = volume?.volumeId ?? "";
    const gate = backend.gate("createSnapshot");
    const snapshotting = c.createSnapshot({ name: "s", sourceVolumeId: volumeId });
    await gate.entered();
    await expectCode(
      growOwnedStorage({ backend, inflight }, volumeId, { requiredBytes: 128 * MiB, limitBytes: 0 }, signal),
      Code.Aborted,
      /CreateSnapshot is already in progress/,
    );
    expect((await backend.getVolume(volumeId, signal))?.capacityBytes).toBe(64 * MiB);
    gate.release();
    await snapshotting;

    expect(await growOwnedStorage({ backend, inflight }, volumeId, { requiredBytes: 128 * MiB - 1, limitBytes: 0 }, signal)).toBe(
      128 * MiB,
    );
    // While it grows, the controller's operations on the volume wait their turn.
    const growing = backend.gate("expandVolume");
    const second = growOwnedStorage({ backend, inflight }, volumeId, { requiredBytes: 256 * MiB, limitBytes: 0 }, signal);
    await growing.entered();
    await expectCode(c.deleteVolume({ volumeId }), Code.Aborted, /NodeExpandVolume is already in progress/);
    growing.release();
    expect(await second).toBe(256 * MiB);
    await expectCode(
      growOwnedStorage({ backend, inflight }, volumeId, { requiredBytes: 0, limitBytes: 200 * MiB }, signal),
      Code.OutOfRange,
      /volumes can only grow/,
    );
  });
});
