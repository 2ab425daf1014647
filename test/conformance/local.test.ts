// @module-tag needs-root
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance } from "../../src/conformance/runner.js";
import { DriverProcess } from "../lifecycle/driver-process.js";
import { hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { expectConformant, hasCapSysResource } from "./harness.js";

const MiB = 1024n ** 2n;

describe("conformance suite against the local backend (all-in-one, alpha features on)", () => {
  let dir: string;
  let driver: DriverProcess;

  beforeAll(async () => {
    dir = await makeTestDir("conformance-local");
    driver = new DriverProcess(
      "local driver",
      join(dir, "csi.sock"),
      [
        "--backend",
        "local",
        "--data-dir",
        join(dir, "data"),
        "--node-id",
        "conformance-node",
        "--alpha-features",
        "all",
        "--log-level",
        "warn",
      ],
      join(dir, "driver.log"),
    );
    await driver.start();
  }, 60_000);

  afterAll(async () => {
    await driver?.close();
    if (dir !== undefined) {
      // The suite cleans up after itself; anything left is its bug (or the driver's) and fails here.
      expect(await hostLeaks(dir)).toEqual([]);
      await removeTestDir(dir);
    }
  }, 60_000);

  it("passes every check", async () => {
    // Without CAP_SYS_RESOURCE no driver can grow a mounted ext4 filesystem; the DigitalOcean run covers online growth with xfs.
    const skip = (await hasCapSysResource()) ? undefined : /^expand\.online-mount$/;
    const report = await runConformance({
      endpoint: driver.endpoint,
      stagingDir: join(dir, "staging"),
      targetDir: join(dir, "target"),
      testVolumeSize: 64n * MiB,
      ...(skip !== undefined ? { skip } : {}),
    });
    expectConformant(report);
  }, 300_000);
});
