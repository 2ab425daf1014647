import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startDebugServer, type DebugServer } from "../../../src/cli/debug-server.js";
import { createPrometheusMetrics } from "../../../src/cli/prometheus.js";
import type { HealthReport } from "../../../src/driver/readiness.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { captureLog, type CapturedLog } from "../../support/log-capture.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { mountCapability, startDriver, type RunningDriver } from "./driver-harness.js";
import { deadline, expectCode, simController, TOKEN } from "./helpers.js";

const WARN = 40;
const INFO = 30;

/** The lines the API health logged (its transitions), as [level, problem] pairs. */
function transitions(log: CapturedLog): [number, string][] {
  return log
    .records()
    .filter((r) => r.api === "digitalocean")
    .map((r) => [r.level as number, typeof r.problem === "string" ? r.problem : "recovered"]);
}

describe("DigitalOcean API health (backend level)", () => {
  let sim: DoSimulator;
  beforeEach(async () => {
    sim = await DoSimulator.start({ token: TOKEN });
  });
  afterEach(async () => {
    await sim.stop();
  });

  it("logs one warning when calls start failing and one info line when the API answers again, and reuses the failure", async () => {
    const log = captureLog("info");
    const backend = simController(sim, { log: log.logger });
    await backend.findVolumeByName("pvc-before", deadline());
    expect(transitions(log)).toEqual([]);

    sim.faults.serverErrorRate = 1;
    for (let i = 0; i < 3; i++) await expectCode(backend.findVolumeByName("pvc-outage", deadline()), Code.Unavailable);
    expect(transitions(log)).toEqual([[WARN, "unreachable"]]);
    const warning = log.records().find((r) => r.api === "digitalocean");
    expect(warning?.msg).toMatch(/unreachable.*500 Unexpected server-side error/);

    // The check reuses the failure the calls reported: no request of its own.
    sim.resetCounters();
    for (let i = 0; i < 3; i++) await expect(backend.health.check(deadline())).rejects.toThrow(/DigitalOcean API: it is unreachable/);
    expect(sim.apiRequests()).toBe(0);

    sim.faults.serverErrorRate = 0;
    await backend.findVolumeByName("pvc-after", deadline());
    await backend.findVolumeByName("pvc-after-2", deadline());
    expect(transitions(log)).toEqual([
      [WARN, "unreachable"],
      [INFO, "recovered"],
    ]);
    sim.resetCounters();
    expect(await backend.health.check(deadline())).toBe("ready");
    expect(sim.apiRequests()).toBe(0);
  });

  it("tells a refused token from an unreachable API, and ignores answers that say nothing about the API's health", async () => {
    const log = captureLog("info");
    const backend = simController(sim, { log: log.logger });
    // A 404 is the API answering: healthy. So is a 403 (a valid token lacking one scope).
    await expectCode(backend.expandVolume("no-such-volume", 2 * 1024 ** 3, deadline()), Code.NotFound);
    sim.failNext("GET /v2/volumes", 403, "You are not authorized to perform this operation");
    await expectCode(backend.findVolumeByName("pvc-scoped", deadline()), Code.PermissionDenied);
    // A caller that gives up says nothing about the API.
    sim.faults.latencyMs = 200;
    await expectCode(backend.findVolumeByName("pvc-slow", AbortSignal.timeout(20)), Code.DeadlineExceeded);
    sim.faults.latencyMs = 0;
    // The simulator still holds the abandoned request for its 200 ms: let it answer before any fault is queued
    // below, or it would take one of them.
    await sleep(300);
    expect(transitions(log)).toEqual([]);

    sim.faults.dropConnections = 100;
    await expectCode(backend.findVolumeByName("pvc-dropped", deadline()), Code.Unavailable);
    sim.faults.dropConnections = 0;
    sim.failNext("GET /v2/volumes", 401, "Unable to authenticate you.", 2);
    await expectCode(backend.findVolumeByName("pvc-denied", deadline()), Code.Unauthenticated);
    await expectCode(backend.findVolumeByName("pvc-denied", deadline()), Code.Unauthenticated);
    expect(transitions(log)).toEqual([
      [WARN, "unreachable"],
      [WARN, "unauthorised"],
    ]);
    await expect(backend.health.check(deadline())).rejects.toThrow(/refuses the token \(401 Unable to authenticate you\.\)/);
  });

  it("counts a token without the account scope as working: its own GET /v2/account answered 403 is an answer", async () => {
    const log = captureLog("info");
    const backend = simController(sim, { log: log.logger });
    sim.failNext("GET /v2/account", 403, "You are not authorized to perform this operation");
    expect(await backend.health.check(deadline())).toBe("ready");
    expect(sim.count("GET /v2/account")).toBe(1);
    expect(transitions(log)).toEqual([]);
  });
});

describe("DigitalOcean controller during an API outage (gRPC and the debug server)", () => {
  let dir: string;
  let sim: DoSimulator;
  let log: CapturedLog;
  let driver: RunningDriver;
  let debug: DebugServer;
  beforeAll(async () => {
    dir = await makeTestDir("do-api-outage");
    sim = await DoSimulator.start({ region: "lon1" });
    log = captureLog("info");
    driver = await startDriver(
      dir,
      ["--token", "secret-token", "--region", "lon1", "--url", sim.url, "--metadata-url", "http://127.0.0.1:9/metadata/v1/"],
      log.logger,
    );
    debug = await startDebugServer(
      "127.0.0.1:0",
      driver.plugin.readiness,
      await createPrometheusMetrics("dobs.csi.digitalocean.com"),
      log.logger,
    );
  });
  afterAll(async () => {
    await debug?.close();
    await driver?.stop();
    await sim?.stop();
    await removeTestDir(dir);
  });

  const get = async (path: string): Promise<{ status: number; body: string }> => {
    const res = await fetch(`http://${debug.address}${path}`);
    return { status: res.status, body: await res.text() };
  };
  const ready = async (): Promise<{ status: number; report: HealthReport }> => {
    const { status, body } = await get("/ready");
    return { status, report: JSON.parse(body) as HealthReport };
  };
  const create = (name: string) => driver.clients.controller.createVolume({ name, volumeCapabilities: [mountCapability()] });

  it("answers Probe ready while the API fails, shows the API down on /ready, logs the change once, and recovers", async () => {
    await create("pvc-before-outage");
    expect(await ready()).toEqual({
      status: 200,
      report: { ready: true, checks: [{ name: "DigitalOcean API", kind: "dependency", state: "ready" }] },
    });

    sim.faults.serverErrorRate = 1;
    // Two calls fail at the same time (after the transport's retries): one warning.
    await Promise.all([expectCode(create("pvc-outage-1"), Code.Unavailable), expectCode(create("pvc-outage-2"), Code.Unavailable)]);
    sim.resetCounters();
    for (let i = 0; i < 5; i++) expect((await driver.clients.identity.probe({})).ready).toBe(true);
    expect((await get("/health")).status).toBe(200);
    const down = await ready();
    expect(down.status).toBe(503);
    expect(down.report.ready).toBe(false);
    expect(down.report.checks).toEqual([
      { name: "DigitalOcean API", kind: "dependency", state: "failed", message: expect.stringMatching(/unreachable.*500/) },
    ]);
    // Neither Probe nor /ready added a request of its own.
    expect(sim.apiRequests()).toBe(0);
    expect(transitions(log)).toEqual([[WARN, "unreachable"]]);

    sim.faults.serverErrorRate = 0;
    await create("pvc-after-outage");
    expect((await ready()).status).toBe(200);
    expect((await driver.clients.identity.probe({})).ready).toBe(true);
    expect(transitions(log)).toEqual([
      [WARN, "unreachable"],
      [INFO, "recovered"],
    ]);
  });
});
