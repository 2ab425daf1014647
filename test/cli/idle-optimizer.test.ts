/**
 * An idle node plugin runs nothing through V8's optimizing compiler (TurboFan).
 * One optimized function maps the compiler's code into the process: 3–5 MiB of
 * the node binary's text, in RSS on every node, for a plugin that serves a
 * Probe every few seconds. Start-up loads ~40 modules and spends most of the
 * optimization budget of node:path's normalising function; how much depends on
 * the length of the directory the bundle sits in. The readiness check that the
 * first Probe runs once pushed it over from some directories (not others), so
 * the built bundle is started from directories of several lengths, on both
 * Nodes, with the image's NODE_OPTIONS, and V8's own trace must show nothing
 * marked for TurboFan after start-up and a few Probes.
 */
import { cp, mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { connectCsi } from "../../src/csi/client.js";
import { type DriverProcess, imageEnvironment, RUNTIMES, startDriver } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// Directory names that, with the test root's path, span the lengths that made the difference (1 to 22 more characters).
const DIR_NAMES = [1, 4, 9, 14, 18, 22].map((n) => "d".repeat(n));

function turbofanMarks(driver: DriverProcess): string[] {
  return driver
    .stdout()
    .split("\n")
    .filter((line) => /for optimization to TURBOFAN|target TURBOFAN/.test(line));
}

describe("an idle node plugin", () => {
  let dir: string;
  let driver: DriverProcess | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("idle-opt");
  });
  afterEach(async () => {
    await driver?.stop("SIGKILL");
    driver = undefined;
    await removeTestDir(dir);
  });

  for (const runtime of RUNTIMES) {
    it(`optimizes nothing with TurboFan after start-up and its first Probes, from any directory, on ${runtime.name}`, async () => {
      const found: Record<string, string[]> = {};
      for (const name of DIR_NAMES) {
        const home = join(dir, name);
        await mkdir(home);
        await cp(resolve("dist"), join(home, "dist"), { recursive: true });
        // stdbuf: V8 prints its trace through C's stdout, which a pipe would buffer past the process's end.
        driver = await startDriver(
          join(home, "csi.sock"),
          ["--backend", "local", "--mode", "node", "--data-dir", join(home, "data"), "--node-id", "n1"],
          {
            command: ["stdbuf", "-o0", runtime.node, "--trace-opt", join(home, "dist", "do-csi-plugin.js")],
            env: imageEnvironment(),
          },
        );
        const running = driver;
        const clients = connectCsi(running.endpoint);
        try {
          for (let i = 0; i < 3; i++) expect((await clients.identity.probe({})).ready).toBe(true);
          // A compilation runs on a background thread; the marking is printed at once, give it a moment anyway.
          await new Promise((r) => setTimeout(r, 300));
          found[join(home, "dist")] = turbofanMarks(running);
          if (name === DIR_NAMES.at(-1)) {
            // The trace works: under load, TurboFan does optimize the call path.
            let left = 5000;
            await Promise.all(
              Array.from({ length: 16 }, async () => {
                while (left-- > 0) await clients.identity.probe({});
              }),
            );
            expect(turbofanMarks(running).length).toBeGreaterThan(0);
          }
        } finally {
          clients.close();
        }
        expect(await running.stop("SIGTERM")).toBe(0);
        driver = undefined;
      }
      expect(found).toEqual(Object.fromEntries(Object.keys(found).map((k) => [k, []])));
    }, 120_000);
  }
});
