import { readdir, readFile, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DRIVER_ENTRY, startDriver, type DriverProcess } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// The metrics library is loaded only for --debug-addr: a node plugin on every node pays nothing for it.
// The built program runs with a module loader hook that writes down every file it loads.
describe("prom-client and node:http loading", () => {
  let dir: string;
  let driver: DriverProcess | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("metrics-loading");
  });
  afterEach(async () => {
    await driver?.stop("SIGKILL");
    driver = undefined;
    await removeTestDir(dir);
  });

  /** The bundle's chunks that hold prom-client's code. */
  async function metricsChunks(): Promise<string[]> {
    const chunks = join(dirname(DRIVER_ENTRY), "chunks");
    const found: string[] = [];
    for (const name of await readdir(chunks)) {
      if (name.endsWith(".js") && (await readFile(join(chunks, name), "utf8")).includes("collectDefaultMetrics"))
        found.push(join(chunks, name));
    }
    return found;
  }

  async function loadedFiles(args: readonly string[]): Promise<string[]> {
    const log = join(dir, "loaded.txt");
    await writeFile(log, "");
    await writeFile(
      join(dir, "hooks.mjs"),
      `import { appendFileSync } from "node:fs";\nexport async function load(url, context, next) {\n  appendFileSync(${JSON.stringify(log)}, url + "\\n");\n  return next(url, context);\n}\n`,
    );
    await writeFile(
      join(dir, "register.mjs"),
      `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(join(dir, "hooks.mjs")).href)});\n`,
    );
    driver = await startDriver(join(dir, "csi.sock"), ["--backend", "local", "--data-dir", join(dir, "data"), "--node-id", "n1", ...args], {
      command: ["node", "--import", pathToFileURL(join(dir, "register.mjs")).href, DRIVER_ENTRY],
    });
    await driver.stop("SIGTERM");
    driver = undefined;
    return (await readFile(log, "utf8")).split("\n").filter((l) => l !== "");
  }

  it("is not loaded without --debug-addr, in node or all-in-one mode, and is loaded with it", async () => {
    const chunks = (await metricsChunks()).map((c) => pathToFileURL(c).href);
    expect(chunks.length).toBeGreaterThan(0);
    for (const mode of ["node", "all"]) {
      const loaded = await loadedFiles(["--mode", mode]);
      expect(loaded).toContain(pathToFileURL(DRIVER_ENTRY).href); // the hook saw the program load
      expect(
        loaded.filter((url) => chunks.includes(url)),
        mode,
      ).toEqual([]);
    }
    const withMetrics = await loadedFiles(["--mode", "node", "--debug-addr", "127.0.0.1:0"]);
    expect(withMetrics.filter((url) => chunks.includes(url)).length).toBeGreaterThan(0);
  });

  // node:http serves only the debug server (about 30 ms of a node plugin's start on Node 22).
  it("loads node:http (the debug server's) only with --debug-addr", async () => {
    expect(await loadedFiles(["--mode", "node"])).not.toContain("node:http");
    expect(await loadedFiles(["--mode", "node", "--debug-addr", "127.0.0.1:0"])).toContain("node:http");
  });
});
