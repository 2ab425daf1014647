import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitForAction } from "../../../src/backend/digitalocean/action-waiter.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { captureLog } from "../../support/log-capture.js";
import { recordingMetrics } from "../../support/recording-metrics.js";
import { deadline, expectCode, simClient, simController, TOKEN } from "./helpers.js";

describe("DigitalOcean backend metrics and progress", () => {
  let sim: DoSimulator;
  beforeEach(async () => {
    sim = await DoSimulator.start({ localDropletId: 5150, token: TOKEN });
  });
  afterEach(async () => {
    await sim.stop();
  });

  it("reports every request by route template and status, never by raw id", async () => {
    const metrics = recordingMetrics();
    const client = simClient(sim, { metrics });
    const volume = await client.createVolume({ name: "metrics-vol", region: "nyc1", size_gigabytes: 1 }, deadline());
    await client.getVolume(volume.id, deadline());
    await expectCode(client.getVolume("00000000-0000-4000-8000-000000000000", deadline()), Code.NotFound);
    expect(metrics.requests.map(({ route, status }) => `${route} ${status}`)).toEqual([
      "POST /v2/volumes 201",
      "GET /v2/volumes/{id} 200",
      "GET /v2/volumes/{id} 404",
    ]);
    for (const { route, seconds } of metrics.requests) {
      expect(route).not.toContain(volume.id);
      expect(seconds).toBeGreaterThanOrEqual(0);
    }
  });

  it("counts retries after 5xx answers and dropped connections, and 429s with the time they made it wait", async () => {
    const metrics = recordingMetrics();
    const client = simClient(sim, { metrics });
    sim.faults.serverErrors = 2;
    await client.getAccount(deadline());
    sim.faults.dropConnections = 1;
    await client.getAccount(deadline());
    expect(metrics.retries).toEqual([
      { route: "GET /v2/account", reason: "server_error" },
      { route: "GET /v2/account", reason: "server_error" },
      { route: "GET /v2/account", reason: "connection_error" },
    ]);
    expect(metrics.requests.map((r) => r.status)).toEqual(["500", "500", "200", "error", "200"]);

    sim.faults.tooManyRequests = 1;
    sim.faults.retryAfterSeconds = 1;
    await client.getAccount(deadline());
    expect(metrics.rateLimited.map((r) => r.route)).toEqual(["GET /v2/account"]);
    for (const { waitSeconds } of metrics.rateLimited) {
      expect(waitSeconds).toBeGreaterThan(0.8);
      expect(waitSeconds).toBeLessThan(1.2);
    }
  });

  it("measures action waits by type and outcome, and logs progress while an action is in progress", async () => {
    const metrics = recordingMetrics();
    const log = captureLog("info");
    const client = simClient(sim, { metrics });
    const polling = { firstPollMs: 20, factor: 1.5, maxPollMs: 50, timeoutMs: 10_000, progressIntervalMs: 40 };
    const watch = { log: log.logger, metrics };

    sim.faults.actionDelayMs = 0;
    const quick = await client.createVolume({ name: "quick", region: "nyc1", size_gigabytes: 1 }, deadline());
    const done = await client.attachVolume(quick.id, 5150, "nyc1", deadline());
    await waitForAction(client, quick.id, done, deadline(), polling, watch);
    expect(metrics.actionWaits).toEqual([]); // completed in the POST's answer: no wait

    sim.faults.actionDelayMs = 300;
    const volume = await client.createVolume({ name: "slow", region: "nyc1", size_gigabytes: 1 }, deadline());
    const action = await client.attachVolume(volume.id, 5150, "nyc1", deadline());
    await waitForAction(client, volume.id, action, deadline(), polling, watch);
    expect(metrics.actionWaits).toHaveLength(1);
    expect(metrics.actionWaits[0]).toMatchObject({ actionType: "attach_volume", outcome: "completed" });
    expect(metrics.actionWaits[0]?.seconds).toBeGreaterThan(0.2);
    const progress = log.records().filter((r) => r.msg === "still waiting");
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatchObject({
      volumeId: volume.id,
      actionId: action.id,
      waitingFor: `DigitalOcean action ${action.id} (attach_volume)`,
    });
    expect(progress.map((r) => r.elapsedSeconds as number)).toEqual(
      [...progress.map((r) => r.elapsedSeconds as number)].sort((a, b) => a - b),
    );

    sim.faults.actionOutcome = "errored";
    const failing = await client.createVolume({ name: "errored", region: "nyc1", size_gigabytes: 1 }, deadline());
    const errored = await client.attachVolume(failing.id, 5150, "nyc1", deadline());
    await expectCode(waitForAction(client, failing.id, errored, deadline(), polling, watch), Code.Internal);
    sim.faults.actionOutcome = "never";
    const stuck = await client.createVolume({ name: "stuck", region: "nyc1", size_gigabytes: 1 }, deadline());
    const never = await client.attachVolume(stuck.id, 5150, "nyc1", deadline());
    await expectCode(waitForAction(client, stuck.id, never, deadline(), { ...polling, timeoutMs: 150 }, watch), Code.DeadlineExceeded);
    await expectCode(waitForAction(client, stuck.id, never, deadline(100), polling, watch), Code.DeadlineExceeded);
    expect(metrics.actionWaits.map((w) => w.outcome)).toEqual(["completed", "errored", "timeout", "cancelled"]);
  });

  it("the controller reports its action waits and their progress with the volume id", async () => {
    const metrics = recordingMetrics();
    const log = captureLog("info");
    const controller = simController(sim, {
      log: log.logger,
      transport: { metrics },
      polling: { firstPollMs: 20, factor: 1.5, maxPollMs: 50, timeoutMs: 10_000, progressIntervalMs: 40 },
      metrics,
    });
    const volume = await controller.createVolume(
      {
        name: "pvc-watched",
        sizeBytes: 1024 ** 3,
        accessTypes: ["mount"],
        fsType: "ext4",
        parameters: {},
        mutableParameters: {},
        requisite: [],
        preferred: [],
      },
      deadline(),
    );
    sim.faults.actionDelayMs = 250;
    const request = { volumeId: volume.id, nodeId: "5150", readonly: false, accessType: "mount" as const, singleNode: true };
    await controller.publishVolume({ ...request, volumeContext: { ...volume.context } }, deadline());
    expect(metrics.actionWaits).toMatchObject([{ actionType: "attach_volume", outcome: "completed" }]);
    expect(metrics.requests.map((r) => r.route)).toContain("POST /v2/volumes/{id}/actions");
    expect(log.records().filter((r) => r.msg === "still waiting" && r.volumeId === volume.id).length).toBeGreaterThanOrEqual(1);
  });

  it("a clone logs progress while the snapshot of its source is not yet available", async () => {
    const log = captureLog("info");
    const controller = simController(sim, {
      log: log.logger,
      polling: { firstPollMs: 20, factor: 1.5, maxPollMs: 50, timeoutMs: 10_000, progressIntervalMs: 40 },
    });
    const spec = {
      sizeBytes: 1024 ** 3,
      accessTypes: ["mount" as const],
      fsType: "ext4",
      parameters: {},
      mutableParameters: {},
      requisite: [],
      preferred: [],
    };
    const source = await controller.createVolume({ ...spec, name: "clone-origin" }, deadline());
    sim.faults.snapshotDelayMs = 300;
    await controller.createVolume({ ...spec, name: "clone-copy", source: { kind: "volume", id: source.id } }, deadline());
    const waits = log.records().filter((r) => r.msg === "still waiting" && r.sourceVolumeId === source.id);
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(String(waits[0]?.waitingFor)).toMatch(/^DigitalOcean snapshot \S+ of volume \S+ \(clone source\)$/);
    expect(typeof waits[0]?.snapshotId).toBe("string");
  });
});
