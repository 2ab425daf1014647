/**
 * The image sets no V8 flags (each one costs every start 12-17 ms, see
 * src/cli/v8-flags.ts), so the plugin bounds its heap itself. Under a burst of
 * 20,000 Probes at concurrency 64, on the built program and both Nodes it ships
 * on:
 * - the young generation never grows past twice the size V8 starts it at (V8
 *   would grow it to 32 MiB, 16 per semi space, and Node 20's V8 never gives that
 *   back);
 * - the old space stays within 24 MiB (about 16 MiB here; left to V8's own
 *   growing factor it reached 31-34 MiB).
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectCsi } from "../../src/csi/client.js";
import {
  DRIVER_ENTRY,
  type DriverProcess,
  imageEnvironment,
  imageNodeOptions,
  probeBurst,
  RUNTIMES,
  startDriver,
} from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const REPORTER = resolve("test/cli/fixtures/heap-bounds-report.mjs");
const MiB = 2 ** 20;

interface HeapBounds {
  readonly initialNew: number;
  readonly largestNew: number;
  readonly largestOld: number;
}

describe("the heap's bounds under a burst of calls", () => {
  let dir: string;
  let driver: DriverProcess | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("heap-bounds");
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
    it(`young generation within twice its starting size, old space within 24 MiB, on ${runtime.name}`, async () => {
      const report = join(dir, "heap.json");
      driver = await startDriver(
        join(dir, "csi.sock"),
        ["--backend", "local", "--mode", "node", "--data-dir", join(dir, "data"), "--node-id", "n1"],
        {
          command: [runtime.node, "--import", REPORTER, DRIVER_ENTRY],
          env: { ...imageEnvironment(), HEAP_BOUNDS_REPORT: report },
        },
      );
      const clients = connectCsi(driver.endpoint);
      try {
        await probeBurst(clients, 20_000);
      } finally {
        clients.close();
      }
      expect(await driver.stop("SIGTERM")).toBe(0);
      const bounds = JSON.parse(await readFile(report, "utf8")) as HeapBounds;
      expect(bounds.initialNew).toBeGreaterThan(0);
      expect(bounds.largestNew).toBeLessThanOrEqual(2 * bounds.initialNew);
      expect(bounds.largestOld).toBeLessThan(24 * MiB);
    }, 90_000);
  }
});
