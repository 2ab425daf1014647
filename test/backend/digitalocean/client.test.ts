import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitForAction } from "../../../src/backend/digitalocean/action-waiter.js";
import { listRange } from "../../../src/backend/digitalocean/paging.js";
import { MetadataClient } from "../../../src/backend/digitalocean/metadata.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { captureLog } from "../../support/log-capture.js";
import { deadline, expectCode, simClient, TOKEN } from "./helpers.js";

describe("DigitalOcean API client", () => {
  let sim: DoSimulator;
  beforeEach(async () => {
    sim = await DoSimulator.start({ localDropletId: 5150, token: TOKEN });
  });
  afterEach(async () => {
    await sim.stop();
  });

  it("sends the bearer token and a User-Agent naming the driver, and never logs the token", async () => {
    const log = captureLog("trace");
    const client = simClient(sim, { log: log.logger });
    const volume = await client.createVolume({ name: "ua", region: "nyc1", size_gigabytes: 1 }, deadline());
    await client.getVolume(volume.id, deadline());
    expect(sim.requests.every((r) => r.authorized && r.userAgent === "do-csi-plugin/test (dobs.csi.digitalocean.com)")).toBe(true);
    expect(log.lines.length).toBeGreaterThan(0);
    expect(log.lines.join("\n")).not.toContain(TOKEN);
    const wrong = simClient(sim, { token: "wrong" });
    await expectCode(wrong.getAccount(deadline()), Code.Unauthenticated);
  });

  it("maps API errors to CSI codes, never to a code-less error", async () => {
    const client = simClient(sim);
    await expectCode(client.getVolume("missing", deadline()), Code.NotFound);
    sim.failNext("GET /v2/account", 403, "You do not have permission to perform this action.");
    await expectCode(client.getAccount(deadline()), Code.PermissionDenied);
    sim.failNext("GET /v2/account", 422, "Droplet already has a pending event.");
    await expectCode(client.getAccount(deadline()), Code.Aborted);
    sim.failNext("GET /v2/account", 422, "cannot attach more than 7 volumes to a single Droplet");
    await expectCode(client.getAccount(deadline()), Code.ResourceExhausted);
    sim.failNext("GET /v2/account", 400, "error parsing request body");
    await expectCode(client.getAccount(deadline()), Code.InvalidArgument);
    sim.failNext("GET /v2/account", 418, "teapot");
    await expectCode(client.getAccount(deadline()), Code.Internal);
  });

  it('answers an id that URL parsing would rewrite (".", "..") or an empty one as unknown, without a request', async () => {
    const client = simClient(sim);
    sim.resetCounters();
    for (const bad of [".", "..", ""]) {
      await expectCode(client.getVolume(bad, deadline()), Code.NotFound);
      await expectCode(client.deleteVolume(bad, deadline()), Code.NotFound);
    }
    expect(sim.apiRequests()).toBe(0);
    // Dots inside an id are sent as they are.
    await expectCode(client.getVolume("a.b", deadline()), Code.NotFound);
    expect(sim.counts()).toEqual({ "GET /v2/volumes/{id}": 1 });
  });

  it("follows links.pages.next: CSI paging returns every item exactly once, whatever max_entries does between calls", async () => {
    for (let i = 0; i < 53; i++) sim.seedVolume({ name: `page-${String(i).padStart(2, "0")}` });
    const client = simClient(sim);
    const list = (maxEntries: number, token: string) =>
      listRange((request) => client.listVolumes({ region: "nyc1", ...request }, deadline()), maxEntries, token, 0);
    const seen: string[] = [];
    let token = "";
    const sizes = [10, 7, 20, 3, 50];
    let i = 0;
    sim.resetCounters();
    do {
      const page = await list(sizes[i++ % sizes.length] ?? 10, token);
      seen.push(...page.items.map((v) => v.name));
      token = page.nextToken;
    } while (token !== "");
    expect(seen).toEqual(sim.volumes().map((v) => v.name));
    // Constant max_entries: one API request per CSI page.
    sim.resetCounters();
    token = "";
    let pages = 0;
    do {
      const page = await list(10, token);
      pages++;
      token = page.nextToken;
    } while (token !== "");
    expect(pages).toBe(6);
    expect(sim.count("GET /v2/volumes")).toBe(6);
    // max_entries 0: everything, fetched with the default page size.
    sim.resetCounters();
    const all = await listRange((request) => client.listVolumes({ region: "nyc1", ...request }, deadline()), 0, "", 25);
    expect(all.items.length).toBe(53);
    expect(all.nextToken).toBe("");
    expect(sim.count("GET /v2/volumes")).toBe(3);
    await expectCode(list(10, "bogus"), Code.Aborted);
  });

  it("retries 5xx answers and dropped connections with back-off, then gives up with UNAVAILABLE", async () => {
    const client = simClient(sim);
    sim.faults.serverErrors = 2;
    sim.resetCounters();
    await client.getAccount(deadline());
    expect(sim.count("GET /v2/account")).toBe(3);
    sim.faults.dropConnections = 2;
    sim.resetCounters();
    await client.getAccount(deadline());
    expect(sim.count("GET /v2/account")).toBe(3);
    sim.faults.serverErrors = 1000;
    sim.resetCounters();
    await expectCode(client.getAccount(deadline()), Code.Unavailable, /gave up after 6 attempts/);
    expect(sim.count("GET /v2/account")).toBe(6);
  });

  it("waits out 429s as Retry-After says and pauses every call meanwhile", async () => {
    const client = simClient(sim);
    sim.faults.tooManyRequests = 1;
    sim.faults.retryAfterSeconds = 1;
    const started = Date.now();
    await Promise.all([client.getAccount(deadline()), client.getAccount(deadline())]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(850);
    sim.faults.tooManyRequests = 3;
    sim.faults.retryAfterSeconds = 0;
    sim.resetCounters();
    await client.getAccount(deadline());
    expect(sim.count("GET /v2/account")).toBe(4);
    sim.faults.tooManyRequests = 1000;
    await expectCode(simClient(sim, { max429Retries: 3 }).getAccount(deadline()), Code.Unavailable, /rate limit/);
  });

  it("honours ratelimit-reset when a server-side limit answers 429, and a client-side QPS limit avoids it", async () => {
    sim.rateLimit = { limit: 5, windowMs: 1000 };
    const client = simClient(sim);
    const results = await Promise.all(Array.from({ length: 8 }, () => client.getAccount(deadline())));
    expect(results.length).toBe(8);
    await new Promise((r) => setTimeout(r, 1100));
    sim.resetCounters();
    const limited = simClient(sim, { rateLimit: 4.5 });
    const started = Date.now();
    await Promise.all(Array.from({ length: 5 }, () => limited.getAccount(deadline())));
    expect(Date.now() - started).toBeGreaterThanOrEqual(850);
    expect(sim.requests.filter((r) => r.status === 429)).toEqual([]);
  });

  it("bounds every wait by the call's deadline", async () => {
    const client = simClient(sim);
    sim.faults.latencyMs = 3000;
    let started = Date.now();
    await expectCode(client.getAccount(deadline(200)), Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1000);
    sim.faults.latencyMs = 0;
    sim.faults.tooManyRequests = 1;
    sim.faults.retryAfterSeconds = 30;
    started = Date.now();
    await expectCode(client.getAccount(deadline(300)), Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(1500);
  });
});

describe("action polling", () => {
  let sim: DoSimulator;
  beforeEach(async () => {
    sim = await DoSimulator.start({ localDropletId: 5150 });
  });
  afterEach(async () => {
    await sim.stop();
  });

  async function attach(delayMs: number, outcome: "completed" | "errored" | "never" = "completed") {
    sim.faults.actionDelayMs = delayMs;
    sim.faults.actionOutcome = outcome;
    const client = simClient(sim);
    const volume = await client.createVolume({ name: `poll-${Date.now()}`, region: "nyc1", size_gigabytes: 1 }, deadline());
    const action = await client.attachVolume(volume.id, 5150, "nyc1", deadline());
    return { client, volume, action };
  }

  it("does not poll an action the POST answered as completed", async () => {
    const { client, volume, action } = await attach(0);
    sim.resetCounters();
    const started = Date.now();
    await waitForAction(client, volume.id, action, deadline());
    expect(Date.now() - started).toBeLessThan(20);
    expect(sim.apiRequests()).toBe(0);
  });

  it("polls an action in progress first after ~150 ms, then backs off", async () => {
    const { client, volume, action } = await attach(1500);
    const posted = Date.now();
    sim.resetCounters();
    await waitForAction(client, volume.id, action, deadline());
    const polls = sim.requests.filter((r) => r.route === "GET /v2/volumes/{id}/actions/{action_id}").map((r) => r.at);
    expect(polls[0]! - posted).toBeGreaterThanOrEqual(100);
    expect(polls[0]! - posted).toBeLessThanOrEqual(250);
    const gaps = polls.slice(1).map((t, i) => t - polls[i]!);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    expect(gaps[gaps.length - 1]!).toBeGreaterThan(gaps[0]!);
    expect(polls.length).toBeLessThanOrEqual(8);
  });

  it("treats an errored action as a failure", async () => {
    const { client, volume, action } = await attach(0, "errored");
    await expectCode(waitForAction(client, volume.id, action, deadline()), Code.Internal, /errored/);
    const slow = await attach(100, "errored");
    await expectCode(waitForAction(slow.client, slow.volume.id, slow.action, deadline()), Code.Internal, /errored/);
  });

  it("has its own timeout for actions that never complete, and honours the caller's deadline", async () => {
    const { client, volume, action } = await attach(0, "never");
    const polling = { firstPollMs: 50, factor: 2, maxPollMs: 200, timeoutMs: 600 };
    let started = Date.now();
    await expectCode(waitForAction(client, volume.id, action, deadline(), polling), Code.DeadlineExceeded, /still in progress/);
    expect(Date.now() - started).toBeLessThan(1500);
    started = Date.now();
    await expectCode(waitForAction(client, volume.id, action, deadline(250)), Code.DeadlineExceeded, /deadline/);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});

describe("droplet metadata client", () => {
  it("reads the droplet id and region", async () => {
    const sim = await DoSimulator.start({ localDropletId: 31337, region: "fra1" });
    try {
      expect(await new MetadataClient(sim.metadataUrl).identity()).toEqual({ dropletId: "31337", region: "fra1" });
    } finally {
      await sim.stop();
    }
  });

  it("says clearly and quickly when this is not a droplet", async () => {
    const sim = await DoSimulator.start();
    const url = sim.metadataUrl;
    await sim.stop(); // nothing listens there any more
    const started = Date.now();
    await expect(new MetadataClient(url).region()).rejects.toThrow(/metadata service .* is this a DigitalOcean droplet\?.*--region/);
    expect(Date.now() - started).toBeLessThan(2500);
    const silent = new MetadataClient("http://127.0.0.1:9/metadata/v1/", 200);
    await expect(silent.dropletId()).rejects.toThrow(/droplet id/);
  });
});
