/**
 * The image sets NODE_OPTIONS (V8 heap sizes for the plugin's small steady
 * state, measured in bench/RESULTS.md). NODE_OPTIONS accepts only some V8
 * flags, and a rejected one stops every process of the image at start: both
 * Nodes the bundle runs on must accept them, apply them and run the bundle.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import pkg from "../../package.json" with { type: "json" };
import { imageNodeOptions, RUNTIMES } from "../support/driver-process.js";

const execFileAsync = promisify(execFile);

describe("the image's NODE_OPTIONS", () => {
  for (const runtime of RUNTIMES) {
    it(`caps the V8 heap and runs the bundle on ${runtime.name}`, async () => {
      const options = imageNodeOptions();
      const maxOld = /--max-old-space-size=(\d+)/.exec(options)?.[1];
      expect(maxOld, "an old-space cap in the image's NODE_OPTIONS").toBeDefined();
      const env = { ...process.env, NODE_OPTIONS: options };
      const heap = await execFileAsync(runtime.node, ["-p", "require('node:v8').getHeapStatistics().heap_size_limit"], { env });
      // heap_size_limit is the old-space cap plus the young generation: above the cap, far below V8's default (>= 2 GiB here).
      const limitMiB = Number(heap.stdout.trim()) / 2 ** 20;
      expect(limitMiB).toBeGreaterThanOrEqual(Number(maxOld));
      expect(limitMiB).toBeLessThan(Number(maxOld) + 64);
      const version = await execFileAsync(runtime.node, ["dist/do-csi-plugin.js", "--version"], { env });
      expect(version.stdout).toContain(pkg.version);
    });
  }
});
