/**
 * dist/malloc-trim.node (src/native/malloc-trim.c), which the heap trimmer
 * calls to hand glibc's free pages back: the build makes it on this Linux, one
 * build loads in both Nodes the bundle runs on and gives back memory freed in
 * the middle of glibc's heap, and a bundle without it still runs and trims
 * V8's heap, saying why glibc's is not.
 */
import { spawnSync } from "node:child_process";
import { cp, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type DriverProcess, logLines, RUNTIMES, startDriver, until } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const ADDON = resolve("dist/malloc-trim.node");

/**
 * Fragments glibc's heap as a burst of calls does: many short-lived buffers
 * (allocated with malloc, below its mmap threshold), every 32nd kept alive so
 * that glibc can return none of the rest from the top of its heap by itself.
 */
const FRAGMENT_AND_TRIM = `
const addon = { exports: {} };
process.dlopen(addon, ${JSON.stringify(ADDON)});
const kept = [];
let all = [];
for (let i = 0; i < 20000; i++) all.push(Buffer.allocUnsafeSlow(2000).fill(i & 0xff));
for (let i = 31; i < all.length; i += 32) kept.push(all[i]);
all = undefined;
globalThis.gc(); globalThis.gc();
setTimeout(() => {
  globalThis.gc();
  const before = process.memoryUsage.rss();
  const released = addon.exports.trim();
  const after = process.memoryUsage.rss();
  process.stdout.write(JSON.stringify({ released, before, after, kept: kept.length }));
}, 200);
`;

describe("glibc's heap trim (dist/malloc-trim.node)", () => {
  it("is built beside the bundle on Linux with glibc", () => {
    expect(process.platform).toBe("linux");
    expect(process.report.getReport() as { header: { glibcVersionRuntime?: string } }).toMatchObject({
      header: { glibcVersionRuntime: expect.any(String) },
    });
    expect(existsSync(ADDON), "npm run build compiles it (a C compiler and libc6-dev: scripts/host-tools.sh installs them)").toBe(true);
  });

  for (const runtime of RUNTIMES)
    it(`loads in ${runtime.name} and gives back the free pages in the middle of glibc's heap`, () => {
      const run = spawnSync(runtime.node, ["--expose-gc", "-e", FRAGMENT_AND_TRIM], { encoding: "utf8" });
      expect(run.status, run.stderr).toBe(0);
      const { released, before, after, kept } = JSON.parse(run.stdout) as Record<string, number | boolean>;
      expect(kept).toBe(625);
      expect(released).toBe(true);
      // About 38 MiB were freed between the kept buffers; most of it goes.
      expect(Number(before) - Number(after)).toBeGreaterThan(20 * 2 ** 20);
    });

  describe("a bundle built without it", () => {
    let dir: string;
    let driver: DriverProcess | undefined;
    beforeEach(async () => {
      dir = await makeTestDir("malloc-trim");
    });
    afterEach(async () => {
      await driver?.stop("SIGKILL");
      driver = undefined;
      await removeTestDir(dir);
    });

    it("runs, trims V8's heap only, and says why", async () => {
      const dist = join(dir, "dist");
      await cp(resolve("dist"), dist, { recursive: true });
      await rm(join(dist, "malloc-trim.node"));
      driver = await startDriver(
        join(dir, "csi.sock"),
        ["--backend", "local", "--mode", "node", "--data-dir", join(dir, "data"), "--node-id", "n1", "--log-level", "debug"],
        { command: [process.execPath, join(dist, "do-csi-plugin.js")] },
      );
      const running = driver;
      const trimmed = () => logLines(running.stderr()).find((l) => l.msg === "heap trimmed after a quiet time");
      await until("the trim after start-up", () => trimmed() !== undefined);
      expect(trimmed()).toMatchObject({ after: "start-up" });
      expect(trimmed()).not.toHaveProperty("mallocReleased");
      const why = logLines(running.stderr()).find((l) => l.msg === "glibc's free heap is not trimmed");
      expect(String(why?.reason)).toContain("malloc-trim.node was not built");
      expect(await running.stop("SIGTERM")).toBe(0);
    }, 30_000);
  });
});
