/**
 * Node takes its built-in modules from its code cache only while V8's flags
 * hash as they did when the cache was made (src/cli/v8-flags.ts). The image
 * sets no V8 flags, but a user may set heap sizes in NODE_OPTIONS (the image
 * used to), and those alone would make every built-in compile from source. The
 * built program on both Nodes it ships on, under such flags: a node plugin
 * compiles from source no built-in beyond what loading its first chunk costs
 * (node:module and node:v8, loaded before its first line can run), and the heap
 * limit NODE_OPTIONS asks for still holds.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { spawn } from "node:child_process";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DRIVER_ENTRY, RUNTIMES, startDriver } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const REPORTER = resolve("test/cli/fixtures/builtin-cache-report.mjs");

/** Heap sizes a user may put in NODE_OPTIONS: the two V8 flags it accepts for them. */
const HEAP_FLAGS = "--max-semi-space-size=2 --max-old-space-size=64";

interface CacheReport {
  readonly withoutCache: readonly string[];
  readonly withCache: readonly string[];
  readonly heapSizeLimit: number;
}

function reporting(node: string): string[] {
  return [node, "--expose-internals", "--no-warnings", "--import", REPORTER];
}

async function readReport(path: string): Promise<CacheReport> {
  return JSON.parse(await readFile(path, "utf8")) as CacheReport;
}

/** What a program whose first chunk loads node:module and node:v8 (as the bundle's does) compiles without the cache. */
async function referenceReport(dir: string, node: string, nodeOptions: string): Promise<CacheReport> {
  await writeFile(join(dir, "package.json"), '{ "type": "module" }\n');
  await writeFile(join(dir, "first.js"), 'import "node:module";\nimport "node:v8";\nawait import("./next.js");\n');
  await writeFile(join(dir, "next.js"), "export {};\n");
  const report = join(dir, "reference.json");
  const [command, ...args] = reporting(node);
  const code = await new Promise<number | null>((res) => {
    const child = spawn(command ?? node, [...args, join(dir, "first.js")], {
      stdio: "ignore",
      env: { ...process.env, NODE_OPTIONS: nodeOptions, BUILTIN_CACHE_REPORT: report },
    });
    child.once("close", res);
  });
  expect(code).toBe(0);
  return readReport(report);
}

describe("Node's code cache for built-in modules", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTestDir("builtin-cache");
  });
  afterEach(async () => {
    await removeTestDir(dir);
  });

  for (const runtime of RUNTIMES) {
    it(`a node plugin takes its built-ins from the cache under heap flags in NODE_OPTIONS, on ${runtime.name}`, async () => {
      const nodeOptions = HEAP_FLAGS;
      const reference = await referenceReport(dir, runtime.node, nodeOptions);
      // The premise: these flags do make Node compile from source what it loads.
      expect(reference.withoutCache).toContain("v8");

      const report = join(dir, "driver.json");
      const driver = await startDriver(
        join(dir, "csi.sock"),
        ["--backend", "local", "--mode", "node", "--data-dir", join(dir, "data"), "--node-id", "n1"],
        { command: [...reporting(runtime.node), DRIVER_ENTRY], env: { NODE_OPTIONS: nodeOptions, BUILTIN_CACHE_REPORT: report } },
      );
      expect(await driver.stop("SIGTERM")).toBe(0);
      const usage = await readReport(report);

      const fromSource = usage.withoutCache.filter((m) => !reference.withoutCache.includes(m));
      expect(fromSource, "built-ins compiled from source: add them to src/cli/startup-builtins.ts").toEqual([]);
      expect(usage.withCache).toEqual(expect.arrayContaining(["http2", "internal/http2/core", "net", "child_process"]));
      // The heap's size flags are set back to their defaults at start, and the limit they set stays.
      expect(usage.heapSizeLimit).toBe(reference.heapSizeLimit);
      expect(usage.heapSizeLimit).toBeLessThan(80 * 2 ** 20);
    });
  }
});
