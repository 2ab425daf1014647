import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerBackend, ControllerFeatures, NewVolume, Volume } from "../../src/backend/backend.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { InvalidArgument } from "../../src/csi/errors.js";
import { CsiServer } from "../../src/csi/server.js";
import { controllerService } from "../../src/driver/controller.js";
import { Controller, ControllerServiceCapability_RPC_Type as Rpc } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { Code, controllerConfig, expectCode, GiB, mountCapability } from "./controller-harness.js";

// The service is backend-agnostic: with a minimal backend (the DigitalOcean one has other features),
// capabilities follow the backend's features and the missing ones answer the spec's codes.

const NO_FEATURES: ControllerFeatures = {
  cloneVolume: false,
  snapshots: false,
  expandVolume: false,
  getCapacity: false,
  publishReadonly: false,
  listPublishedNodes: false,
  volumeCondition: false,
};

/** Volumes in memory; it knows neither parameters nor sources (like a cloud API that does not return them). */
class MinimalBackend implements ControllerBackend {
  readonly sizeRules = { minBytes: GiB, maxBytes: 16 * 1024 * GiB, defaultBytes: 5 * GiB, unitBytes: GiB };
  readonly features = NO_FEATURES;
  readonly volumes = new Map<string, Volume>();
  created: NewVolume[] = [];
  validateParameters(parameters: Record<string, string>): void {
    for (const key of Object.keys(parameters)) if (key !== "ok") throw InvalidArgument("unknown parameter %s", key);
  }
  async findVolumeByName(name: string) {
    return [...this.volumes.values()].find((v) => v.name === name);
  }
  async getVolume(id: string) {
    return this.volumes.get(id);
  }
  async createVolume(spec: NewVolume) {
    this.created.push(spec);
    const volume: Volume = {
      id: `v${this.volumes.size + 1}`,
      name: spec.name,
      capacityBytes: spec.sizeBytes,
      context: {},
      accessibleTopology: [{ region: "r1" }],
      publishedNodeIds: [],
    };
    this.volumes.set(volume.id, volume);
    return volume;
  }
  async deleteVolume(id: string) {
    this.volumes.delete(id);
  }
  async publishVolume() {
    return { devicePath: "x" };
  }
  async unpublishVolume() {}
  async listVolumes() {
    return { items: [...this.volumes.values()], nextToken: "" };
  }
  async expandVolume(): Promise<number> {
    throw new Error("not called");
  }
  async availableCapacity(): Promise<number> {
    throw new Error("not called");
  }
  async findSnapshotByName() {
    return undefined;
  }
  async getSnapshot() {
    return undefined;
  }
  async createSnapshot(): Promise<never> {
    throw new Error("not called");
  }
  async deleteSnapshot() {}
  async listSnapshots() {
    return { items: [], nextToken: "" };
  }
  async close() {}
}

let dir: string;
let server: CsiServer;
let clients: CsiClients;
const backend = new MinimalBackend();

beforeAll(async () => {
  dir = await makeTestDir("ctl-generic");
  const config = controllerConfig(dir, ["--alpha-features", "get-snapshot,volume-condition"]);
  const service = controllerService({ config, backend, log: silentLogger });
  server = await CsiServer.start({
    endpoint: { kind: "unix", path: join(dir, "csi.sock") },
    socketMode: 0o600,
    log: silentLogger,
    routes: (router) => router.service(Controller, service),
    shutdownTimeoutMs: 2_000,
  });
  clients = connectCsi(`unix://${join(dir, "csi.sock")}`);
});
afterAll(async () => {
  clients?.close();
  await server?.shutdown();
  await removeTestDir(dir);
});

describe("a backend without optional features", () => {
  it("gets only the capabilities it backs, even with alpha switches on", async () => {
    const { capabilities } = await clients.controller.controllerGetCapabilities({});
    expect(capabilities.map((c) => (c.type.case === "rpc" ? Rpc[c.type.value.type] : "?"))).toEqual([
      "CREATE_DELETE_VOLUME",
      "PUBLISH_UNPUBLISH_VOLUME",
      "LIST_VOLUMES",
    ]);
  });

  it("answers UNIMPLEMENTED for the RPCs of missing features", async () => {
    const c = clients.controller;
    await expectCode(c.getCapacity({}), Code.Unimplemented);
    await expectCode(c.createSnapshot({ name: "s", sourceVolumeId: "v1" }), Code.Unimplemented);
    await expectCode(c.deleteSnapshot({ snapshotId: "s" }), Code.Unimplemented);
    await expectCode(c.listSnapshots({}), Code.Unimplemented);
    await expectCode(c.getSnapshot({ snapshotId: "s" }), Code.Unimplemented);
    await expectCode(c.controllerExpandVolume({ volumeId: "v1", capacityRange: { requiredBytes: 1n } }), Code.Unimplemented);
  });

  it("refuses sources and readonly publishing it cannot honour, with INVALID_ARGUMENT", async () => {
    const c = clients.controller;
    await expectCode(
      c.createVolume({
        name: "restore",
        volumeCapabilities: [mountCapability()],
        volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "s" } } },
      }),
      Code.InvalidArgument,
      /cannot create volumes from snapshots/,
    );
    await expectCode(
      c.createVolume({
        name: "clone",
        volumeCapabilities: [mountCapability()],
        volumeContentSource: { type: { case: "volume", value: { volumeId: "v" } } },
      }),
      Code.InvalidArgument,
      /cannot clone/,
    );
    await expectCode(
      c.controllerPublishVolume({ volumeId: "v1", nodeId: "n", volumeCapability: mountCapability(), readonly: true }),
      Code.InvalidArgument,
      /PUBLISH_READONLY/,
    );
  });

  it("uses the backend's size rules and passes only validated, final sizes to it", async () => {
    const c = clients.controller;
    const plain = await c.createVolume({ name: "sized", volumeCapabilities: [mountCapability()], parameters: { ok: "1" } });
    expect(plain.volume?.capacityBytes).toBe(BigInt(5 * GiB));
    const rounded = await c.createVolume({
      name: "rounded",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: BigInt(GiB + 1) },
    });
    expect(rounded.volume?.capacityBytes).toBe(BigInt(2 * GiB));
    expect(backend.created.map((s) => s.sizeBytes)).toEqual([5 * GiB, 2 * GiB]);
    await expectCode(
      c.createVolume({ name: "p", volumeCapabilities: [mountCapability()], parameters: { bad: "1" } }),
      Code.InvalidArgument,
      /unknown parameter bad/,
    );
    await expectCode(
      c.createVolume({ name: "tiny", volumeCapabilities: [mountCapability()], capacityRange: { limitBytes: 1024n } }),
      Code.OutOfRange,
    );
    expect(backend.created).toHaveLength(2);
  });

  it("does not hold a repeated CreateVolume to parameters or a source the backend does not report", async () => {
    const c = clients.controller;
    const first = await c.createVolume({ name: "unknown-source", volumeCapabilities: [mountCapability()] });
    const again = await c.createVolume({ name: "unknown-source", volumeCapabilities: [mountCapability()], parameters: { ok: "2" } });
    expect(again.volume?.volumeId).toBe(first.volume?.volumeId);
    // Still judged by what it does report: the size.
    await expectCode(
      c.createVolume({
        name: "unknown-source",
        volumeCapabilities: [mountCapability()],
        capacityRange: { requiredBytes: BigInt(6 * GiB) },
      }),
      Code.AlreadyExists,
    );
  });

  it("reports a requisite topology the existing volume is not in as ALREADY_EXISTS", async () => {
    const c = clients.controller;
    await c.createVolume({ name: "topo", volumeCapabilities: [mountCapability()] });
    const same = await c.createVolume({
      name: "topo",
      volumeCapabilities: [mountCapability()],
      accessibilityRequirements: { requisite: [{ segments: { region: "r1" } }] },
    });
    expect(same.volume?.accessibleTopology[0]?.segments).toEqual({ region: "r1" });
    await expectCode(
      c.createVolume({
        name: "topo",
        volumeCapabilities: [mountCapability()],
        accessibilityRequirements: { requisite: [{ segments: { region: "r2" } }] },
      }),
      Code.AlreadyExists,
      /requisite/,
    );
  });
});
