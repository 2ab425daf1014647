/**
 * The image sets no V8 flags (each one costs every start 12-17 ms, see
 * src/cli/v8-flags.ts), so the plugin bounds its young generation itself: it
 * never grows past twice the size V8 starts it at, however many calls come at
 * once. Without that bound V8 grows it under a burst of calls to 16 MiB per
 * semi space, and Node 20's V8 never gives that back. Checked on the built
 * program, on both Nodes it ships on, under a burst of Probes at concurrency 64.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectCsi } from "../../src/csi/client.js";
import { DRIVER_ENTRY, type DriverProcess, imageNodeOptions, RUNTIMES, startDriver } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const REPORTER = resolve("test/cli/fixtures/young-generation-report.mjs");

describe("the young generation under a burst of calls", () => {
  let dir: string;
  let driver: DriverProcess | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("young-gen");
  });
  afterEach(async () => {
    await driver?.stop("SIGKILL");
    driver = undefined;
    await removeTestDir(dir);
  });

  it("the image ships no V8 flags", () => {
    expect(imageNodeOptions()).toBe("");
  });

  for (const runtime of RUNTIMES) {
    it(`stays within twice its starting size, on ${runtime.name}`, async () => {
      const report = join(dir, "young.json");
      driver = await startDriver(
        join(dir, "csi.sock"),
        ["--backend", "local", "--mode", "node", "--data-dir", join(dir, "data"), "--node-id", "n1"],
        {
          command: [runtime.node, "--import", REPORTER, DRIVER_ENTRY],
          env: { NODE_OPTIONS: imageNodeOptions(), YOUNG_GENERATION_REPORT: report },
        },
      );
      const clients = connectCsi(driver.endpoint);
      try {
        let left = 6000;
        await Promise.all(
          Array.from({ length: 64 }, async () => {
            while (left-- > 0) expect((await clients.identity.probe({})).ready).toBe(true);
          }),
        );
      } finally {
        clients.close();
      }
      expect(await driver.stop("SIGTERM")).toBe(0);
      const { initial, largest } = JSON.parse(await readFile(report, "utf8")) as { initial: number; largest: number };
      expect(initial).toBeGreaterThan(0);
      expect(largest).toBeLessThanOrEqual(2 * initial);
    }, 60_000);
  }
});
