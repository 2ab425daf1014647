// @module-tag needs-root
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance } from "../../src/conformance/runner.js";
import { DriverProcess } from "../lifecycle/driver-process.js";
import { buildSnapshot, IMAGE_NODE, type NodeRuntime, snapshotCommand } from "../support/driver-process.js";
import { hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { expectConformant, hasCapSysResource } from "./harness.js";

const MiB = 1024n ** 2n;

/**
 * A local-backend driver process (the bundle) in a test directory of its own, started before the block's tests and
 * stopped after them; the suite must leave no mount or loop device behind.
 */
function useLocalDriver(
  name: string,
  extraArgs: readonly string[],
  /** Start it as the image does: from a start-up snapshot built for this Node. */
  fromSnapshotOn?: NodeRuntime,
): { dir(): string; driver(): DriverProcess } {
  let dir: string | undefined;
  let driver: DriverProcess | undefined;
  beforeAll(async () => {
    dir = await makeTestDir(`conformance-${name}`);
    let launch: readonly string[] | undefined;
    if (fromSnapshotOn) {
      const blob = join(dir, "plugin.blob");
      buildSnapshot(fromSnapshotOn.node, blob);
      launch = snapshotCommand(fromSnapshotOn, blob);
    }
    driver = new DriverProcess(
      `local driver (${name})`,
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
        ...extraArgs,
      ],
      join(dir, "driver.log"),
      ...(launch ? [launch] : []),
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
  const need = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the driver is used before it started");
    return value;
  };
  return { dir: () => need(dir), driver: () => need(driver) };
}

const ALL_IN_ONE: readonly { readonly title: string; readonly name: string; readonly fromSnapshotOn?: NodeRuntime }[] = [
  { title: "the local backend (all-in-one, alpha features on)", name: "local" },
  {
    title: "the local backend as the image starts it (its Node, from the start-up snapshot; all-in-one, alpha features on)",
    name: "snapshot",
    fromSnapshotOn: IMAGE_NODE,
  },
];

for (const { title, name, fromSnapshotOn } of ALL_IN_ONE)
  describe(`conformance suite against ${title}`, () => {
    const local = useLocalDriver(name, [], fromSnapshotOn);

    it("passes every check", async () => {
      // Without CAP_SYS_RESOURCE no driver can grow a mounted ext4 filesystem; the DigitalOcean run covers online growth with xfs.
      const skip = (await hasCapSysResource()) ? undefined : /^expand\.online-mount$/;
      const report = await runConformance({
        endpoint: local.driver().endpoint,
        stagingDir: join(local.dir(), "staging"),
        targetDir: join(local.dir(), "target"),
        testVolumeSize: 64n * MiB,
        mutableParameters: { provisioning: "thick" },
        ...(skip !== undefined ? { skip } : {}),
      });
      expectConformant(report);
      const status = (id: string) => report.checks.find((c) => c.id === id)?.status;
      // Modification and group snapshots really ran, and the node service ran its host tools
      // (from a snapshot: spawned after the snapshot was made): volumes were staged, published and cloned.
      for (const id of [
        "controller-modify-volume.at-creation",
        "controller-modify-volume.idempotent",
        "controller-modify-volume.not-found",
        "group-snapshot.create",
        "group-snapshot.same-name-other-volumes",
        "group-snapshot.get",
        "group-snapshot.member-delete",
        "group-snapshot.restore-member",
        "group-snapshot.delete",
        "lifecycle.readonly-publish",
        "lifecycle.stage-retry-after-deadline",
        "lifecycle.clone-data",
      ])
        expect(status(id), id).toBe("passed");
    }, 300_000);
  });

describe("conformance suite against the local backend with --node-deployment (one instance per node, alpha features on)", () => {
  const local = useLocalDriver("node-deployment", ["--node-deployment"]);

  it("passes every check that applies to what it advertises, growing mounted volumes on the node", async () => {
    // Online growth of a mounted volume is checked whatever the sandbox: xfs grows without CAP_SYS_RESOURCE
    // (and needs 300 MiB); here it is NodeExpandVolume alone that grows the image, the device and the filesystem.
    const xfs = !(await hasCapSysResource());
    const report = await runConformance({
      endpoint: local.driver().endpoint,
      stagingDir: join(local.dir(), "staging"),
      targetDir: join(local.dir(), "target"),
      testVolumeSize: xfs ? 320n * MiB : 64n * MiB,
      ...(xfs ? { fsType: "xfs" } : {}),
    });
    expectConformant(report);
    const status = (id: string) => report.checks.find((c) => c.id === id)?.status;
    // Expansion through the node alone really ran, and what is not offered was not called.
    expect([status("expand.online-mount"), status("expand.online-block")]).toEqual(["passed", "passed"]);
    expect(status("controller-publish.idempotent")).toBe("skipped");
  }, 300_000);
});
