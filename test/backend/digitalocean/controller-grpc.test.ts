import { Code, ConnectError } from "@connectrpc/connect";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  ControllerServiceCapability_RPC_Type as Rpc,
  PluginCapability_Service_Type as ServiceType,
} from "../../../src/gen/csi/v1/csi_pb.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { blockCapability, Mode, mountCapability, simFlags, startDriver, type RunningDriver } from "./driver-harness.js";
import { expectCode, GIB } from "./helpers.js";

const DROPLET = 2718;
const KEY = "dobs.csi.digitalocean.com/volume-name";

describe("DigitalOcean driver over gRPC, controller mode (--token and --region, outside a droplet)", () => {
  let dir: string;
  let sim: DoSimulator;
  let driver: RunningDriver;
  beforeAll(async () => {
    dir = await makeTestDir("do-grpc-controller");
    sim = await DoSimulator.start({ localDropletId: DROPLET, region: "lon1" });
    // The metadata URL points nowhere: controller mode with --region must not need it.
    driver = await startDriver(dir, [
      "--token",
      "secret-token",
      "--region",
      "lon1",
      "--url",
      sim.url,
      "--metadata-url",
      "http://127.0.0.1:9/metadata/v1/",
    ]);
  });
  afterAll(async () => {
    await driver.stop();
    await sim.stop();
    await removeTestDir(dir);
  });
  beforeEach(() => {
    sim.faults.actionDelayMs = 0;
    sim.faults.actionOutcome = "completed";
    sim.resetCounters();
  });

  const create = (name: string, requiredBytes?: number, extra: Record<string, unknown> = {}) =>
    driver.clients.controller.createVolume({
      name,
      volumeCapabilities: [mountCapability()],
      ...(requiredBytes !== undefined ? { capacityRange: { requiredBytes: BigInt(requiredBytes), limitBytes: 0n } } : {}),
      ...extra,
    });

  it("serves Identity and Controller only, with the Go driver's name and the capabilities that work", async () => {
    const info = await driver.clients.identity.getPluginInfo({});
    expect(info.name).toBe("dobs.csi.digitalocean.com");
    const caps = await driver.clients.identity.getPluginCapabilities({});
    const services = caps.capabilities.flatMap((c) => (c.type.case === "service" ? [c.type.value.type] : []));
    expect(services).toContain(ServiceType.CONTROLLER_SERVICE);
    expect(services).toContain(ServiceType.VOLUME_ACCESSIBILITY_CONSTRAINTS);
    const rpcs = (await driver.clients.controller.controllerGetCapabilities({})).capabilities.flatMap((c) =>
      c.type.case === "rpc" ? [c.type.value.type] : [],
    );
    for (const rpc of [
      Rpc.CREATE_DELETE_VOLUME,
      Rpc.PUBLISH_UNPUBLISH_VOLUME,
      Rpc.LIST_VOLUMES,
      Rpc.CREATE_DELETE_SNAPSHOT,
      Rpc.LIST_SNAPSHOTS,
      Rpc.CLONE_VOLUME,
      Rpc.EXPAND_VOLUME,
      Rpc.LIST_VOLUMES_PUBLISHED_NODES,
    ]) {
      expect(rpcs).toContain(rpc);
    }
    expect(rpcs).not.toContain(Rpc.GET_CAPACITY);
    await expectCode(driver.clients.node.nodeGetInfo({}), Code.Unimplemented);
    expect(sim.requests.filter((r) => r.route.includes("metadata"))).toEqual([]);
  });

  it("Probe is ready and costs no API request however often it is called", async () => {
    for (let i = 0; i < 20; i++) expect((await driver.clients.identity.probe({})).ready).toBe(true);
    expect(sim.apiRequests()).toBe(0);
  });

  it("create -> publish -> unpublish -> delete costs 5 API requests and no idle wait", async () => {
    const started = Date.now();
    const { volume } = await create("pvc-grpc-life", 10 * GIB);
    expect(volume?.capacityBytes).toBe(BigInt(10 * GIB));
    expect(volume?.accessibleTopology.map((t) => t.segments)).toEqual([{ region: "lon1" }]);
    expect(volume?.volumeContext).toEqual({ [KEY]: "pvc-grpc-life" });
    const volumeId = volume?.volumeId ?? "";
    const published = await driver.clients.controller.controllerPublishVolume({
      volumeId,
      nodeId: String(DROPLET),
      volumeCapability: mountCapability(),
      volumeContext: volume?.volumeContext,
    });
    expect(published.publishContext).toEqual({ [KEY]: "pvc-grpc-life" });
    await driver.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: String(DROPLET) });
    await driver.clients.controller.deleteVolume({ volumeId });
    // No idle wait: the Go driver sleeps 1 s before each poll. A bound, not a performance number (see bench/).
    expect(Date.now() - started).toBeLessThan(900);
    expect(sim.apiRequests()).toBeLessThanOrEqual(6);
    expect(sim.apiRequests()).toBe(5);
  });

  it("defaults to 16 GiB and rounds a non-GiB size up, so a retried CreateVolume is idempotent", async () => {
    const { volume: byDefault } = await create("pvc-default");
    expect(byDefault?.capacityBytes).toBe(BigInt(16 * GIB));
    const odd = 1.5 * GIB + 12345;
    const first = await create("pvc-odd-size", odd);
    expect(first.volume?.capacityBytes).toBe(BigInt(2 * GIB));
    const retry = await create("pvc-odd-size", odd);
    expect(retry.volume?.volumeId).toBe(first.volume?.volumeId);
    expect(retry.volume?.capacityBytes).toBe(BigInt(2 * GIB));
    const { volume: tiny } = await create("pvc-tiny", 1);
    expect(tiny?.capacityBytes).toBe(BigInt(GIB));
    await expectCode(create("pvc-too-big", 17 * 1024 * GIB), Code.OutOfRange);
  });

  it("ValidateVolumeCapabilities confirms single-node mount and block access, and nothing else", async () => {
    const { volume } = await create("pvc-validate", GIB);
    const volumeId = volume?.volumeId ?? "";
    const ok = await driver.clients.controller.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability(), blockCapability()],
    });
    expect(ok.confirmed?.volumeCapabilities.length).toBe(2);
    const multi = await driver.clients.controller.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability("ext4", Mode.MULTI_NODE_MULTI_WRITER)],
    });
    expect(multi.confirmed).toBeUndefined();
    expect(multi.message).not.toBe("");
    // A PV's attributes carry keys this driver never set (the provisioner's identity, an older
    // driver's keys): they are no reason to refuse. Contradicting the driver's own context is.
    const context = { ...(volume?.volumeContext ?? {}) };
    expect(Object.keys(context).length).toBeGreaterThan(0);
    const withExtra = await driver.clients.controller.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability()],
      volumeContext: { ...context, "storage.kubernetes.io/csiProvisionerIdentity": "1700000000000-8081-dobs.csi.digitalocean.com" },
    });
    expect(withExtra.confirmed).toBeDefined();
    const [ownKey] = Object.keys(context);
    const contradicting = await driver.clients.controller.validateVolumeCapabilities({
      volumeId,
      volumeCapabilities: [mountCapability()],
      volumeContext: { ...context, [ownKey ?? ""]: "something-else" },
    });
    expect(contradicting.confirmed).toBeUndefined();
    expect(contradicting.message).toMatch(/contradicts/);
    await expectCode(
      driver.clients.controller.validateVolumeCapabilities({ volumeId: "no-such-volume", volumeCapabilities: [mountCapability()] }),
      Code.NotFound,
    );
  });

  it("maps errors: attached delete -> FAILED_PRECONDITION, snapshot of a missing volume -> NOT_FOUND, unknown node -> NOT_FOUND", async () => {
    const { volume } = await create("pvc-attached", GIB);
    const volumeId = volume?.volumeId ?? "";
    await driver.clients.controller.controllerPublishVolume({
      volumeId,
      nodeId: String(DROPLET),
      volumeCapability: mountCapability(),
      volumeContext: volume?.volumeContext,
    });
    await expectCode(driver.clients.controller.deleteVolume({ volumeId }), Code.FailedPrecondition);
    await expectCode(
      driver.clients.controller.createSnapshot({ name: "snap-of-nothing", sourceVolumeId: "no-such-volume" }),
      Code.NotFound,
    );
    await expectCode(
      driver.clients.controller.controllerPublishVolume({
        volumeId,
        nodeId: "424242",
        volumeCapability: mountCapability(),
        volumeContext: volume?.volumeContext,
      }),
      Code.NotFound,
    );
    await driver.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: String(DROPLET) });
    await driver.clients.controller.deleteVolume({ volumeId });
    await driver.clients.controller.deleteVolume({ volumeId });
  });

  it("snapshots report ready_to_use from the API; restore and clone produce volumes with their content source", async () => {
    const { volume } = await create("pvc-source", 2 * GIB);
    const volumeId = volume?.volumeId ?? "";
    sim.faults.snapshotDelayMs = 300;
    const { snapshot } = await driver.clients.controller.createSnapshot({ name: "snapshot-grpc", sourceVolumeId: volumeId });
    expect(snapshot?.readyToUse).toBe(false);
    expect(snapshot?.sizeBytes).toBe(BigInt(2 * GIB));
    const again = await driver.clients.controller.createSnapshot({ name: "snapshot-grpc", sourceVolumeId: volumeId });
    expect(again.snapshot?.snapshotId).toBe(snapshot?.snapshotId);
    await new Promise((r) => setTimeout(r, 350));
    sim.faults.snapshotDelayMs = 0;
    const listed = await driver.clients.controller.listSnapshots({ snapshotId: snapshot?.snapshotId ?? "" });
    expect(listed.entries.map((e) => e.snapshot?.readyToUse)).toEqual([true]);
    const restored = await create("pvc-restored", 2 * GIB, {
      volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot?.snapshotId ?? "" } } },
    });
    expect(restored.volume?.contentSource?.type.case).toBe("snapshot");
    const clone = await create("pvc-cloned", 3 * GIB, { volumeContentSource: { type: { case: "volume", value: { volumeId } } } });
    expect(clone.volume?.contentSource?.type).toEqual({ case: "volume", value: expect.objectContaining({ volumeId }) as unknown });
    expect(clone.volume?.capacityBytes).toBe(BigInt(3 * GIB));
    const retried = await create("pvc-cloned", 3 * GIB, { volumeContentSource: { type: { case: "volume", value: { volumeId } } } });
    expect(retried.volume?.volumeId).toBe(clone.volume?.volumeId);
    expect(retried.volume?.contentSource?.type.case).toBe("volume");
  });

  it("ListVolumes pages return every volume exactly once with published nodes", async () => {
    for (let i = 0; i < 11; i++) sim.seedVolume({ name: `grpc-list-${i}`, region: "lon1", dropletIds: i === 0 ? [DROPLET] : [] });
    const seen: string[] = [];
    let startingToken = "";
    do {
      const page = await driver.clients.controller.listVolumes({ maxEntries: 4, startingToken });
      expect(page.entries.length).toBeLessThanOrEqual(4);
      seen.push(...page.entries.map((e) => e.volume?.volumeId ?? ""));
      startingToken = page.nextToken;
    } while (startingToken !== "");
    const expected = sim
      .volumes()
      .filter((v) => v.region === "lon1")
      .map((v) => v.id);
    expect(seen).toEqual(expected);
    const all = await driver.clients.controller.listVolumes({});
    const first = all.entries.find((e) => e.volume?.volumeId === sim.volumes().find((v) => v.name === "grpc-list-0")?.id);
    expect(first?.status?.publishedNodeIds).toEqual([String(DROPLET)]);
    await expectCode(driver.clients.controller.listVolumes({ maxEntries: 4, startingToken: "not-a-token" }), Code.Aborted);
  });

  it("expands a volume and gives up on a slow action at the call's deadline, a retry then succeeding", async () => {
    const { volume } = await create("pvc-expand", GIB);
    const volumeId = volume?.volumeId ?? "";
    const grown = await driver.clients.controller.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(3 * GIB), limitBytes: 0n },
    });
    expect(grown.capacityBytes).toBe(BigInt(3 * GIB));
    expect(grown.nodeExpansionRequired).toBe(true);
    sim.faults.actionDelayMs = 1_000;
    const started = Date.now();
    const err = await driver.clients.controller
      .controllerPublishVolume(
        { volumeId, nodeId: String(DROPLET), volumeCapability: mountCapability(), volumeContext: volume?.volumeContext },
        { timeoutMs: 300 },
      )
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(900);
    await new Promise((r) => setTimeout(r, 900));
    sim.faults.actionDelayMs = 0;
    const retry = await driver.clients.controller.controllerPublishVolume({
      volumeId,
      nodeId: String(DROPLET),
      volumeCapability: mountCapability(),
      volumeContext: volume?.volumeContext,
    });
    expect(retry.publishContext).toEqual({ [KEY]: "pvc-expand" });
  });

  it("rides out 429 storms and 5xx answers: no RPC fails", async () => {
    sim.faults.tooManyRequests = 4;
    sim.faults.serverErrors = 3;
    const { volume } = await create("pvc-storm", GIB);
    await driver.clients.controller.controllerPublishVolume({
      volumeId: volume?.volumeId ?? "",
      nodeId: String(DROPLET),
      volumeCapability: mountCapability(),
      volumeContext: volume?.volumeContext,
    });
    expect(sim.volume(volume?.volumeId ?? "")?.dropletIds).toEqual([DROPLET]);
  });

  it("ControllerModifyVolume `tags`: the volume carries exactly the tags asked for, tags created when missing, one GET when nothing changes", async () => {
    const caps = await driver.clients.controller.controllerGetCapabilities({});
    expect(caps.capabilities.some((c) => c.type.case === "rpc" && c.type.value.type === Rpc.MODIFY_VOLUME)).toBe(true);
    const { volume } = await create("tagged-volume", GIB, { mutableParameters: { tags: "team-a,cost:7" } });
    const id = volume?.volumeId ?? "";
    // At creation the tags ride on the create request itself (the API creates missing tags).
    expect(sim.volume(id)?.tags.sort()).toEqual(["cost:7", "team-a"]);

    sim.resetCounters();
    await driver.clients.controller.controllerModifyVolume({ volumeId: id, mutableParameters: { tags: "team-b, cost:7" } });
    expect(sim.volume(id)?.tags.sort()).toEqual(["cost:7", "team-b"]);
    // GET the volume; team-b is new: tag (404), create the tag, tag again; team-a: untag.
    expect(sim.counts()).toEqual({
      "GET /v2/volumes/{id}": 1,
      "POST /v2/tags/{tag}/resources": 2,
      "POST /v2/tags": 1,
      "DELETE /v2/tags/{tag}/resources": 1,
    });

    sim.resetCounters();
    await driver.clients.controller.controllerModifyVolume({ volumeId: id, mutableParameters: { tags: "cost:7,team-b" } });
    expect(sim.apiRequests()).toBe(1);

    await driver.clients.controller.controllerModifyVolume({ volumeId: id, mutableParameters: { tags: "" } });
    expect(sim.volume(id)?.tags).toEqual([]);

    const before = JSON.stringify(sim.volume(id));
    await expectCode(
      driver.clients.controller.controllerModifyVolume({ volumeId: id, mutableParameters: { tags: "fine", size: "2" } }),
      Code.InvalidArgument,
    );
    await expectCode(
      driver.clients.controller.controllerModifyVolume({ volumeId: id, mutableParameters: { tags: "bad tag" } }),
      Code.InvalidArgument,
    );
    expect(JSON.stringify(sim.volume(id))).toBe(before);
    await expectCode(
      driver.clients.controller.controllerModifyVolume({
        volumeId: "00000000-0000-4000-8000-000000000000",
        mutableParameters: { tags: "x" },
      }),
      Code.NotFound,
    );
    await driver.clients.controller.deleteVolume({ volumeId: id });
  });
});

describe("DigitalOcean driver over gRPC: configuration mistakes", () => {
  it("refuses --region without --token (node mode), as the Go driver does", async () => {
    await expect(startDriver("/nonexistent", ["--region", "nyc1"])).rejects.toThrow(/region flag must not be set/);
  });

  it("a plugin whose token the API rejects stays live (Probe ready), and its report and its calls say why", async () => {
    const dir = await makeTestDir("do-grpc-badtoken");
    const sim = await DoSimulator.start({ token: "the-right-one" });
    const driver = await startDriver(dir, ["--token", "wrong", "--region", "nyc1", ...simFlags(sim, join(dir, "by-id"))]);
    try {
      expect((await driver.clients.identity.probe({})).ready).toBe(true);
      expect(sim.apiRequests()).toBe(0);
      const report = await driver.plugin.readiness.report(AbortSignal.timeout(10_000));
      expect(report.ready).toBe(false);
      expect(report.checks).toEqual([
        {
          name: "DigitalOcean API",
          kind: "dependency",
          state: "failed",
          message: expect.stringMatching(/refuses the token.*authenticate/),
        },
      ]);
      await expectCode(
        driver.clients.controller.createVolume({ name: "x", volumeCapabilities: [mountCapability()] }),
        Code.Unauthenticated,
      );
    } finally {
      await driver.stop();
      await sim.stop();
      await removeTestDir(dir);
    }
  });
});
