// @module-tag needs-root
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance } from "../../src/conformance/runner.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { DriverProcess } from "../lifecycle/driver-process.js";
import { hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { expectConformant } from "./harness.js";

const GiB = 1024n ** 3n;

describe("conformance suite against the DigitalOcean backend (API simulator; controller and node plugin as separate processes)", () => {
  let dir: string;
  let sim: DoSimulator;
  let controller: DriverProcess;
  let node: DriverProcess;

  beforeAll(async () => {
    dir = await makeTestDir("conformance-do");
    sim = await DoSimulator.start({ byIdDir: join(dir, "by-id"), dataDir: join(dir, "sim") });
    controller = new DriverProcess(
      "controller",
      join(dir, "controller.sock"),
      ["--token", "conformance", "--region", sim.region, "--url", sim.url, "--log-level", "warn"],
      join(dir, "controller.log"),
    );
    node = new DriverProcess(
      "node",
      join(dir, "node.sock"),
      ["--metadata-url", sim.metadataUrl, "--by-id-dir", join(dir, "by-id"), "--log-level", "warn"],
      join(dir, "node.log"),
    );
    await controller.start();
    await node.start();
  }, 60_000);

  afterAll(async () => {
    await node?.close();
    await controller?.close();
    await sim?.stop();
    if (dir !== undefined) {
      expect(await hostLeaks(dir)).toEqual([]);
      await removeTestDir(dir);
    }
  }, 60_000);

  it("passes every check", async () => {
    const report = await runConformance({
      endpoint: node.endpoint,
      controllerEndpoint: controller.endpoint,
      stagingDir: join(dir, "staging"),
      targetDir: join(dir, "target"),
      testVolumeSize: GiB,
      // xfs grows online without CAP_SYS_RESOURCE, which sandboxes may withhold (ext4 is covered by the local run).
      fsType: "xfs",
      mutableParameters: { tags: "conformance,cost:0" },
    });
    expectConformant(report);
    for (const id of ["controller-modify-volume.at-creation", "controller-modify-volume.idempotent", "controller-modify-volume.not-found"])
      expect(report.checks.find((c) => c.id === id)?.status, id).toBe("passed");
    // Everything the suite created was deleted again.
    expect(sim.volumes()).toEqual([]);
    expect(sim.snapshots()).toEqual([]);
  }, 300_000);
});
