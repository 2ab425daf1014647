import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NewVolume, PublishRequest } from "../../../src/backend/backend.js";
import { openDigitalOceanController, type DigitalOceanController } from "../../../src/backend/digitalocean/controller.js";
import { doVolumeName } from "../../../src/backend/digitalocean/names.js";
import { parseCommandLine } from "../../../src/cli/options.js";
import { silentLogger } from "../../../src/log/logger.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { deadline, expectCode, FAST_POLLING, GIB, simController } from "./helpers.js";

const DROPLET = 424242;
const KEY = "dobs.csi.digitalocean.com/volume-name";

function newVolume(name: string, sizeBytes = GIB, extra: Partial<NewVolume> = {}): NewVolume {
  return {
    name,
    sizeBytes,
    accessTypes: ["mount"],
    fsType: "ext4",
    parameters: {},
    mutableParameters: {},
    requisite: [],
    preferred: [],
    ...extra,
  };
}

function publish(volumeId: string, volumeContext: Record<string, string>, nodeId = String(DROPLET)): PublishRequest {
  return { volumeId, nodeId, readonly: false, accessType: "mount", singleNode: true, volumeContext };
}

describe("DigitalOcean controller backend", () => {
  let sim: DoSimulator;
  let backend: DigitalOceanController;
  beforeEach(async () => {
    sim = await DoSimulator.start({ localDropletId: DROPLET });
    backend = simController(sim, { polling: FAST_POLLING });
  });
  afterEach(async () => {
    await sim.stop();
  });

  it("spends 5 requests and no idle wait on a create -> publish -> unpublish -> delete life (the Go driver: 13 and ~2 s)", async () => {
    sim.resetCounters();
    const started = Date.now();
    expect(await backend.findVolumeByName("pvc-life", deadline())).toBeUndefined();
    const volume = await backend.createVolume(newVolume("pvc-life", 5 * GIB), deadline());
    expect(volume).toMatchObject({
      name: "pvc-life",
      capacityBytes: 5 * GIB,
      accessibleTopology: [{ region: "nyc1" }],
      context: { [KEY]: "pvc-life" },
    });
    const context = await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline());
    expect(context).toEqual({ [KEY]: "pvc-life" });
    expect(sim.volume(volume.id)?.dropletIds).toEqual([DROPLET]);
    await backend.unpublishVolume(volume.id, String(DROPLET), deadline());
    expect(sim.volume(volume.id)?.dropletIds).toEqual([]);
    await backend.deleteVolume(volume.id, deadline());
    const elapsed = Date.now() - started;
    expect(sim.counts()).toEqual({
      "DELETE /v2/volumes/{id}": 1,
      "GET /v2/volumes": 1,
      "POST /v2/volumes": 1,
      "POST /v2/volumes/{id}/actions": 2,
    });
    expect(sim.apiRequests()).toBeLessThanOrEqual(6);
    // No idle wait: the Go driver sleeps 1 s before each poll. A bound, not a performance number (see bench/).
    expect(elapsed).toBeLessThan(900);
    const created = sim.requests.find((r) => r.route === "POST /v2/volumes");
    expect(created).toBeDefined();
  });

  it("creates volumes with the Go driver's description, region and --do-tag", async () => {
    const tagged = simController(sim, { tag: "k8s-cluster" });
    const volume = await tagged.createVolume(newVolume("pvc-tagged", 2 * GIB), deadline());
    expect(sim.volume(volume.id)).toMatchObject({
      description: "Created by DigitalOcean CSI driver",
      region: "nyc1",
      tags: ["k8s-cluster"],
      sizeGigabytes: 2,
    });
    sim.resetCounters();
    await tagged.publishVolume(publish(volume.id, { ...volume.context }), deadline());
    expect(sim.count("POST /v2/tags/{tag}/resources")).toBe(0); // tagged at creation: nothing more to do
  });

  it("tags a volume it did not create on publish, creating the tag first when needed", async () => {
    const existing = sim.seedVolume({ name: "static-pv", sizeGigabytes: 3 });
    const tagged = simController(sim, { tag: "fresh-tag", polling: FAST_POLLING });
    sim.resetCounters();
    const context = await tagged.publishVolume(publish(existing.id, {}), deadline());
    expect(context).toEqual({ [KEY]: "static-pv" });
    expect(sim.volume(existing.id)?.tags).toEqual(["fresh-tag"]);
    expect(sim.counts()).toEqual({
      "GET /v2/volumes/{id}": 1,
      "POST /v2/tags": 1,
      "POST /v2/tags/{tag}/resources": 2,
      "POST /v2/volumes/{id}/actions": 1,
    });
  });

  it("rounds sizes up to whole GiB and reports the real capacity", async () => {
    const volume = await backend.createVolume(newVolume("pvc-odd", 1.5 * GIB), deadline());
    expect(volume.capacityBytes).toBe(2 * GIB);
    expect(sim.volume(volume.id)?.sizeGigabytes).toBe(2);
    expect((await backend.findVolumeByName("pvc-odd", deadline()))?.capacityBytes).toBe(2 * GIB);
  });

  it("maps CSI names the API would refuse to valid, distinct, stable DigitalOcean names", async () => {
    const a = await backend.createVolume(newVolume("Sanity-Volume_A"), deadline());
    const b = await backend.createVolume(newVolume("sanity-volume-a"), deadline());
    expect(a.id).not.toBe(b.id);
    expect(sim.volume(a.id)?.name).toBe(doVolumeName("Sanity-Volume_A"));
    expect(sim.volume(a.id)?.name).toMatch(/^[a-z][a-z0-9-]{0,63}$/);
    expect((await backend.findVolumeByName("Sanity-Volume_A", deadline()))?.id).toBe(a.id);
    expect(doVolumeName("x".repeat(200)).length).toBeLessThanOrEqual(64);
    expect(doVolumeName("pvc-0b8d9c52-1111-4c8e-9d3a-2f1e5c7a9b10")).toBe("pvc-0b8d9c52-1111-4c8e-9d3a-2f1e5c7a9b10");
  });

  it("refuses a requisite topology in another region with RESOURCE_EXHAUSTED", async () => {
    await expectCode(
      backend.createVolume(newVolume("pvc-far", GIB, { requisite: [{ region: "fra1" }] }), deadline()),
      Code.ResourceExhausted,
      /nyc1/,
    );
    const ok = await backend.createVolume(newVolume("pvc-near", GIB, { requisite: [{ region: "fra1" }, { region: "nyc1" }] }), deadline());
    expect(ok.accessibleTopology).toEqual([{ region: "nyc1" }]);
  });

  it("answers a create whose name already exists (a retry after a lost answer) with that volume when it fits", async () => {
    sim.seedVolume({ name: "pvc-raced", sizeGigabytes: 4 });
    const volume = await backend.createVolume(newVolume("pvc-raced", 4 * GIB), deadline());
    expect(volume.capacityBytes).toBe(4 * GIB);
    await expectCode(backend.createVolume(newVolume("pvc-raced", 8 * GIB), deadline()), Code.AlreadyExists);
    sim.failNext("POST /v2/volumes", 422, "volume limit exceeded: this account may have at most 10 volumes");
    await expectCode(backend.createVolume(newVolume("pvc-over"), deadline()), Code.ResourceExhausted);
  });

  it("publishes a static volume (no name in volume_context) with a GET first, and answers an attached one without attaching", async () => {
    const existing = sim.seedVolume({ name: "old-pv", dropletIds: [DROPLET] });
    sim.resetCounters();
    expect(await backend.publishVolume(publish(existing.id, {}), deadline())).toEqual({ [KEY]: "old-pv" });
    expect(sim.counts()).toEqual({ "GET /v2/volumes/{id}": 1 });
    const elsewhere = sim.seedVolume({ name: "taken-pv", dropletIds: [777] });
    await expectCode(backend.publishVolume(publish(elsewhere.id, {}), deadline()), Code.FailedPrecondition, /777/);
  });

  it("answers a repeated publish (422 already attached) with success, and FAILED_PRECONDITION when attached elsewhere", async () => {
    const volume = await backend.createVolume(newVolume("pvc-twice"), deadline());
    await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline());
    sim.resetCounters();
    expect(await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline())).toEqual({ [KEY]: "pvc-twice" });
    expect(sim.apiRequests()).toBe(2);
    sim.addDroplet(5);
    await expectCode(
      backend.publishVolume(publish(volume.id, { ...volume.context }, "5"), deadline()),
      Code.FailedPrecondition,
      /attached to droplet 424242/,
    );
  });

  it("maps publish failures: unknown volume or node -> NOT_FOUND, 8th volume -> RESOURCE_EXHAUSTED, pending event -> ABORTED", async () => {
    await expectCode(
      backend.publishVolume(publish("no-such-volume", { [KEY]: "ghost" }), deadline()),
      Code.NotFound,
      /volume no-such-volume/,
    );
    const volume = await backend.createVolume(newVolume("pvc-lonely"), deadline());
    await expectCode(backend.publishVolume(publish(volume.id, { ...volume.context }, "999"), deadline()), Code.NotFound, /droplet 999/);
    await expectCode(backend.publishVolume(publish(volume.id, { ...volume.context }, "not-a-droplet"), deadline()), Code.NotFound);
    for (let i = 0; i < 7; i++) sim.seedVolume({ name: `filler-${i}`, dropletIds: [DROPLET] });
    await expectCode(backend.publishVolume(publish(volume.id, { ...volume.context }), deadline()), Code.ResourceExhausted, /7 volumes/);
    sim.failNext("POST /v2/volumes/{id}/actions", 422, "Droplet already has a pending event.");
    await expectCode(backend.publishVolume(publish(volume.id, { ...volume.context }), deadline()), Code.Aborted);
  });

  it("unpublishes idempotently: not attached, unknown volume, unknown or non-droplet node are all success; empty node detaches everywhere", async () => {
    const volume = await backend.createVolume(newVolume("pvc-detach"), deadline());
    await backend.unpublishVolume(volume.id, String(DROPLET), deadline());
    await backend.unpublishVolume("no-such-volume", String(DROPLET), deadline());
    await backend.unpublishVolume(volume.id, "12345", deadline());
    await backend.unpublishVolume(volume.id, "node-x", deadline());
    await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline());
    await backend.unpublishVolume(volume.id, "", deadline());
    expect(sim.volume(volume.id)?.dropletIds).toEqual([]);
    sim.failNext("POST /v2/volumes/{id}/actions", 422, "Droplet already has a pending event.");
    await expectCode(backend.unpublishVolume(volume.id, String(DROPLET), deadline()), Code.Aborted);
  });

  it("refuses to delete an attached volume (FAILED_PRECONDITION) and deletes an unknown one successfully", async () => {
    const volume = await backend.createVolume(newVolume("pvc-busy"), deadline());
    await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline());
    await expectCode(backend.deleteVolume(volume.id, deadline()), Code.FailedPrecondition, /unpublished/);
    await backend.deleteVolume("no-such-volume", deadline());
  });

  it("waits for slow actions with backoff, fails an errored one, and a retry after a deadline expiry succeeds", async () => {
    const volume = await backend.createVolume(newVolume("pvc-slow"), deadline());
    sim.faults.actionDelayMs = 400;
    await expectCode(backend.publishVolume(publish(volume.id, { ...volume.context }), deadline(150)), Code.DeadlineExceeded);
    await new Promise((r) => setTimeout(r, 400));
    sim.faults.actionDelayMs = 0;
    expect(await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline())).toEqual({ [KEY]: "pvc-slow" });
    sim.faults.actionOutcome = "errored";
    await expectCode(backend.unpublishVolume(volume.id, String(DROPLET), deadline()), Code.Internal, /errored/);
    sim.faults.actionOutcome = "completed";
    sim.faults.actionDelayMs = 100;
    await backend.unpublishVolume(volume.id, String(DROPLET), deadline());
    expect(sim.volume(volume.id)?.dropletIds).toEqual([]);
  });

  it("survives 429 storms and 5xx answers during a life", async () => {
    sim.faults.tooManyRequests = 3;
    sim.faults.serverErrors = 2;
    const volume = await backend.createVolume(newVolume("pvc-storm"), deadline());
    sim.faults.dropConnections = 1;
    await backend.publishVolume(publish(volume.id, { ...volume.context }), deadline());
    await backend.unpublishVolume(volume.id, String(DROPLET), deadline());
    await backend.deleteVolume(volume.id, deadline());
    expect(sim.volume(volume.id)).toBeUndefined();
  });

  it("lists volumes page by page, each exactly once, with published node ids; a foreign token is ABORTED", async () => {
    for (let i = 0; i < 23; i++) sim.seedVolume({ name: `list-${i}`, dropletIds: i === 3 ? [DROPLET] : [] });
    sim.seedVolume({ name: "elsewhere", region: "fra1" });
    const ids: string[] = [];
    let token = "";
    do {
      const page = await backend.listVolumes(5, token, deadline());
      expect(page.items.length).toBeLessThanOrEqual(5);
      ids.push(...page.items.map((v) => v.id));
      token = page.nextToken;
    } while (token !== "");
    expect(ids).toEqual(
      sim
        .volumes()
        .filter((v) => v.region === "nyc1")
        .map((v) => v.id),
    );
    const all = await backend.listVolumes(0, "", deadline());
    expect(all.items.find((v) => v.name === "list-3")?.publishedNodeIds).toEqual([String(DROPLET)]);
    await expectCode(backend.listVolumes(5, "page-2", deadline()), Code.Aborted);
  });

  it("expands upwards only, reports the real size when already larger, OUT_OF_RANGE past the maximum", async () => {
    const volume = await backend.createVolume(newVolume("pvc-grow", 2 * GIB), deadline());
    expect(await backend.expandVolume(volume.id, 5 * GIB, deadline())).toBe(5 * GIB);
    expect(sim.volume(volume.id)?.sizeGigabytes).toBe(5);
    expect(await backend.expandVolume(volume.id, 3 * GIB, deadline())).toBe(5 * GIB);
    await expectCode(backend.expandVolume(volume.id, 17 * 1024 * GIB, deadline()), Code.OutOfRange);
    await expectCode(backend.expandVolume("no-such-volume", 5 * GIB, deadline()), Code.NotFound);
  });

  it("snapshots: create, find by name, ready_to_use from the API, NOT_FOUND for a missing source, ALREADY_EXISTS for a name of another volume", async () => {
    sim.faults.snapshotDelayMs = 200;
    const a = await backend.createVolume(newVolume("pvc-snap-a", 3 * GIB), deadline());
    const b = await backend.createVolume(newVolume("pvc-snap-b"), deadline());
    const snapshot = await backend.createSnapshot({ name: "snap-1", sourceVolumeId: a.id, parameters: {} }, deadline());
    expect(snapshot).toMatchObject({ name: "snap-1", sourceVolumeId: a.id, sizeBytes: 3 * GIB, readyToUse: false });
    expect((await backend.findSnapshotByName("snap-1", a.id, deadline()))?.id).toBe(snapshot.id);
    expect(await backend.findSnapshotByName("snap-1", b.id, deadline())).toBeUndefined();
    await new Promise((r) => setTimeout(r, 250));
    expect((await backend.getSnapshot(snapshot.id, deadline()))?.readyToUse).toBe(true);
    // A retried create (the name exists on the same volume) returns the snapshot.
    expect((await backend.createSnapshot({ name: "snap-1", sourceVolumeId: a.id, parameters: {} }, deadline())).id).toBe(snapshot.id);
    await expectCode(backend.createSnapshot({ name: "snap-1", sourceVolumeId: b.id, parameters: {} }, deadline()), Code.AlreadyExists);
    await expectCode(
      backend.createSnapshot({ name: "snap-2", sourceVolumeId: "no-such-volume", parameters: {} }, deadline()),
      Code.NotFound,
    );
    expect(await backend.getSnapshot("no-such-snapshot", deadline())).toBeUndefined();
    await backend.deleteSnapshot(snapshot.id, deadline());
    await backend.deleteSnapshot(snapshot.id, deadline());
  });

  it("lists snapshots by id, by source volume (full pages, no filtering after paging) and all, each exactly once", async () => {
    const a = await backend.createVolume(newVolume("pvc-lsa"), deadline());
    const b = await backend.createVolume(newVolume("pvc-lsb"), deadline());
    for (let i = 0; i < 12; i++) {
      await backend.createSnapshot({ name: `s-a-${i}`, sourceVolumeId: a.id, parameters: {} }, deadline());
      await backend.createSnapshot({ name: `s-b-${i}`, sourceVolumeId: b.id, parameters: {} }, deadline());
    }
    const first = await backend.listSnapshots({ sourceVolumeId: a.id }, 5, "", deadline());
    expect(first.items.length).toBe(5);
    expect(first.items.every((s) => s.sourceVolumeId === a.id)).toBe(true);
    const names: string[] = [];
    let token = "";
    do {
      const page = await backend.listSnapshots({ sourceVolumeId: a.id }, 5, token, deadline());
      names.push(...page.items.map((s) => s.name));
      token = page.nextToken;
    } while (token !== "");
    expect(names).toEqual(Array.from({ length: 12 }, (_, i) => `s-a-${i}`));
    const everything: string[] = [];
    token = "";
    do {
      const page = await backend.listSnapshots({}, 7, token, deadline());
      everything.push(...page.items.map((s) => s.id));
      token = page.nextToken;
    } while (token !== "");
    expect(new Set(everything).size).toBe(24);
    expect(everything.length).toBe(24);
    const one = sim.snapshots().find((s) => s.name === "s-a-3");
    expect((await backend.listSnapshots({ snapshotId: one?.id }, 0, "", deadline())).items.map((s) => s.id)).toEqual([one?.id]);
    expect((await backend.listSnapshots({ snapshotId: one?.id, sourceVolumeId: b.id }, 0, "", deadline())).items).toEqual([]);
    expect((await backend.listSnapshots({ snapshotId: "missing" }, 0, "", deadline())).items).toEqual([]);
    expect((await backend.listSnapshots({ sourceVolumeId: "missing" }, 0, "", deadline())).items).toEqual([]);
  });

  it("restores from a snapshot (NOT_FOUND when missing, OUT_OF_RANGE when too small) and clones via snapshot + restore", async () => {
    const source = await backend.createVolume(newVolume("pvc-origin", 4 * GIB), deadline());
    const snapshot = await backend.createSnapshot({ name: "origin-snap", sourceVolumeId: source.id, parameters: {} }, deadline());
    const restored = await backend.createVolume(
      newVolume("pvc-restored", 4 * GIB, { source: { kind: "snapshot", id: snapshot.id } }),
      deadline(),
    );
    expect(restored).toMatchObject({ capacityBytes: 4 * GIB, source: { kind: "snapshot", id: snapshot.id } });
    expect((await backend.findVolumeByName("pvc-restored", deadline()))?.source).toEqual({ kind: "snapshot", id: snapshot.id });
    await expectCode(
      backend.createVolume(newVolume("pvc-r2", 4 * GIB, { source: { kind: "snapshot", id: "missing" } }), deadline()),
      Code.NotFound,
    );
    await expectCode(
      backend.createVolume(newVolume("pvc-r3", 2 * GIB, { source: { kind: "snapshot", id: snapshot.id } }), deadline()),
      Code.OutOfRange,
    );

    sim.faults.snapshotDelayMs = 100;
    const clone = await backend.createVolume(newVolume("pvc-clone", 6 * GIB, { source: { kind: "volume", id: source.id } }), deadline());
    expect(clone).toMatchObject({ capacityBytes: 6 * GIB, source: { kind: "volume", id: source.id } });
    expect(sim.snapshots().map((s) => s.name)).toEqual(["origin-snap"]); // the clone's snapshot is gone
    await expectCode(
      backend.createVolume(newVolume("pvc-c2", 6 * GIB, { source: { kind: "volume", id: "missing" } }), deadline()),
      Code.NotFound,
    );
  });

  it("validates StorageClass parameters: the Go driver's keys and unknown ones pass, LUKS and mutable parameters are refused", () => {
    backend.validateParameters(
      { fstype: "xfs", "csi.storage.k8s.io/pvc/name": "data", "dobs.csi.digitalocean.com/luks-encrypted": "false" },
      {},
    );
    backend.validateParameters({ iops: "3000" }, {});
    expect(() => backend.validateParameters({ "dobs.csi.digitalocean.com/luks-encrypted": "true" }, {})).toThrow(/LUKS/);
    expect(() => backend.validateParameters({}, { size: "1" })).toThrow(/mutable/);
  });

  it("has a health check that costs no request while the API answered recently, and one cached request otherwise", async () => {
    const fresh = simController(sim);
    sim.resetCounters();
    expect(await fresh.health.check(deadline())).toBe("ready");
    expect(await fresh.health.check(deadline())).toBe("ready");
    expect(await fresh.health.check(deadline())).toBe("ready");
    expect(sim.count("GET /v2/account")).toBe(1);
    const other = simController(sim);
    await other.findVolumeByName("x", deadline());
    sim.resetCounters();
    await other.health.check(deadline());
    expect(sim.apiRequests()).toBe(0);
    const denied = simController(sim, { transport: { token: "" } });
    sim.failNext("GET /v2/account", 401, "Unable to authenticate you.");
    await expect(denied.health.check(deadline())).rejects.toThrow(/cannot use the DigitalOcean API.*authenticate/);
  });
});

describe("opening the DigitalOcean controller", () => {
  it("works outside a droplet with --token and --region, without any metadata request", async () => {
    const sim = await DoSimulator.start();
    try {
      const { config } = parseCommandLine(
        ["--token", "t", "--region", "fra1", "--url", sim.url, "--metadata-url", "http://127.0.0.1:9/metadata/v1/"],
        {},
        "test",
      );
      expect(config.mode).toBe("controller");
      const backend = await openDigitalOceanController(config, silentLogger);
      const volume = await backend.createVolume(newVolume("pvc-outside"), deadline());
      expect(volume.accessibleTopology).toEqual([{ region: "fra1" }]);
      expect(sim.requests.filter((r) => r.route.includes("/metadata/"))).toEqual([]);
      await backend.close();
    } finally {
      await sim.stop();
    }
  });

  it("takes the region from the metadata service without --region, and says clearly when there is none", async () => {
    const sim = await DoSimulator.start({ region: "sgp1" });
    try {
      const { config } = parseCommandLine(["--token", "t", "--url", sim.url, "--metadata-url", sim.metadataUrl], {}, "test");
      const backend = await openDigitalOceanController(config, silentLogger);
      expect((await backend.createVolume(newVolume("pvc-meta"), deadline())).accessibleTopology).toEqual([{ region: "sgp1" }]);
      const { config: lost } = parseCommandLine(
        ["--token", "t", "--url", sim.url, "--metadata-url", "http://127.0.0.1:9/metadata/v1/"],
        {},
        "test",
      );
      await expect(openDigitalOceanController(lost, silentLogger)).rejects.toThrow(/droplet.*--region/);
    } finally {
      await sim.stop();
    }
  });
});
