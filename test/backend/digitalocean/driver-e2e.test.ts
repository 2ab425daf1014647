// @module-tag needs-root
import { Code } from "@connectrpc/connect";
import { execFile } from "node:child_process";
import { mkdir, open, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PluginCapability_Service_Type as ServiceType, VolumeUsage_Unit } from "../../../src/gen/csi/v1/csi_pb.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { mountsUnder } from "../../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { blockCapability, mountCapability, simFlags, startDriver, type RunningDriver } from "./driver-harness.js";
import { expectCode, GIB } from "./helpers.js";

const run = promisify(execFile);
const DROPLET = 8080;
const KEY = "dobs.csi.digitalocean.com/volume-name";

async function df(path: string): Promise<number> {
  const { stdout } = await run("df", ["-B1", "--output=size", path]);
  return Number(stdout.trim().split("\n")[1]);
}

/** Unmount whatever a failed test left below `dir` (deepest first); the simulator then detaches its loops. */
async function unmountAll(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) await run("umount", ["-l", point]).catch(() => undefined);
}

describe("DigitalOcean driver end to end, all-in-one mode (token, on a droplet), with real devices and mounts", () => {
  let dir: string;
  let sim: DoSimulator;
  let driver: RunningDriver;
  beforeAll(async () => {
    dir = await makeTestDir("do-e2e");
    const byIdDir = join(dir, "by-id");
    sim = await DoSimulator.start({ localDropletId: DROPLET, region: "sfo3", byIdDir, dataDir: join(dir, "sim-data") });
    driver = await startDriver(dir, ["--token", "e2e-token", ...simFlags(sim, byIdDir), "--validate-attachment"]);
    await mkdir(join(dir, "staging"), { recursive: true }); // kubelet makes the staging path's parent
  });
  afterAll(async () => {
    await driver?.stop();
    await unmountAll(dir);
    await sim?.stop();
    await removeTestDir(dir);
  });
  afterEach(async () => {
    sim.faults.actionDelayMs = 0;
  });

  it("serves both services; NodeGetInfo is the droplet, its region and the volume limit", async () => {
    const caps = await driver.clients.identity.getPluginCapabilities({});
    expect(caps.capabilities.some((c) => c.type.case === "service" && c.type.value.type === ServiceType.CONTROLLER_SERVICE)).toBe(true);
    const info = await driver.clients.node.nodeGetInfo({});
    expect(info.nodeId).toBe(String(DROPLET));
    expect(info.maxVolumesPerNode).toBe(7n);
    expect(info.accessibleTopology?.segments).toEqual({ region: "sfo3" });
    expect((await driver.clients.identity.probe({})).ready).toBe(true);
  });

  it("create, attach, stage, publish, write, expand online, snapshot, restore, read back, teardown", async () => {
    const { controller, node } = driver.clients;
    // xfs grows online with CAP_SYS_ADMIN alone; ext4 online growth also needs CAP_SYS_RESOURCE, which sandboxes may withhold.
    const fs = "xfs";
    const staging = join(dir, "staging", "main");
    const target = join(dir, "pods", "main", "mount");
    const stagingRestored = join(dir, "staging", "restored");
    const targetRestored = join(dir, "pods", "restored", "mount");
    await mkdir(join(dir, "pods", "main"), { recursive: true });
    await mkdir(join(dir, "pods", "restored"), { recursive: true });

    sim.resetCounters();
    const { volume } = await controller.createVolume({
      name: "pvc-e2e-main",
      capacityRange: { requiredBytes: BigInt(GIB), limitBytes: 0n },
      volumeCapabilities: [mountCapability(fs)],
    });
    const volumeId = volume?.volumeId ?? "";
    const { publishContext } = await controller.controllerPublishVolume({
      volumeId,
      nodeId: String(DROPLET),
      volumeCapability: mountCapability(fs),
      volumeContext: volume?.volumeContext,
    });
    expect(publishContext).toEqual({ [KEY]: "pvc-e2e-main" });
    expect(sim.apiRequests()).toBe(3);

    await node.nodeStageVolume({
      volumeId,
      stagingTargetPath: staging,
      volumeCapability: mountCapability(fs),
      publishContext,
      volumeContext: volume?.volumeContext,
    });
    await node.nodePublishVolume({
      volumeId,
      stagingTargetPath: staging,
      targetPath: target,
      volumeCapability: mountCapability(fs),
      publishContext,
      volumeContext: volume?.volumeContext,
    });
    const payload = `written through ${target} at ${new Date().toISOString()}\n`.repeat(1000);
    const handle = await open(join(target, "data.txt"), "w");
    await handle.writeFile(payload);
    await handle.sync();
    await handle.close();
    const before = await df(target);
    expect(before).toBeLessThanOrEqual(GIB);

    // Online expansion: the controller resizes the volume (the simulator grows the loop device), the node grows the filesystem.
    const expanded = await controller.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(2 * GIB), limitBytes: 0n },
      volumeCapability: mountCapability(fs),
    });
    expect(expanded).toMatchObject({ capacityBytes: BigInt(2 * GIB), nodeExpansionRequired: true });
    const grown = await node.nodeExpandVolume({
      volumeId,
      volumePath: target,
      stagingTargetPath: staging,
      capacityRange: { requiredBytes: BigInt(2 * GIB), limitBytes: 0n },
      volumeCapability: mountCapability(fs),
    });
    expect(grown.capacityBytes === 0n || grown.capacityBytes >= BigInt(2 * GIB) - BigInt(64 * 1024 * 1024)).toBe(true);
    expect(await df(target)).toBeGreaterThan(before + 0.8 * GIB);
    const stats = await node.nodeGetVolumeStats({ volumeId, volumePath: target });
    const bytes = stats.usage.find((u) => u.unit === VolumeUsage_Unit.BYTES);
    expect(Number(bytes?.total)).toBeGreaterThan(1.5 * GIB);
    expect(await readFile(join(target, "data.txt"), "utf8")).toBe(payload);

    // Snapshot, then restore into a new volume and read the data back through it.
    await run("sync");
    const { snapshot } = await controller.createSnapshot({ name: "snap-e2e", sourceVolumeId: volumeId });
    expect(snapshot).toMatchObject({ sourceVolumeId: volumeId, readyToUse: true, sizeBytes: BigInt(2 * GIB) });
    const restored = await controller.createVolume({
      name: "pvc-e2e-restored",
      capacityRange: { requiredBytes: BigInt(2 * GIB), limitBytes: 0n },
      volumeCapabilities: [mountCapability(fs)],
      volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot?.snapshotId ?? "" } } },
    });
    const restoredId = restored.volume?.volumeId ?? "";
    const restoredPublish = await controller.controllerPublishVolume({
      volumeId: restoredId,
      nodeId: String(DROPLET),
      volumeCapability: mountCapability(fs),
      volumeContext: restored.volume?.volumeContext,
    });
    await node.nodeStageVolume({
      volumeId: restoredId,
      stagingTargetPath: stagingRestored,
      volumeCapability: mountCapability(fs),
      publishContext: restoredPublish.publishContext,
    });
    await node.nodePublishVolume({
      volumeId: restoredId,
      stagingTargetPath: stagingRestored,
      targetPath: targetRestored,
      volumeCapability: mountCapability(fs),
      publishContext: restoredPublish.publishContext,
    });
    expect(await readFile(join(targetRestored, "data.txt"), "utf8")).toBe(payload);
    // The copies are independent.
    await writeFile(join(targetRestored, "only-in-restored.txt"), "x");
    await expect(stat(join(target, "only-in-restored.txt"))).rejects.toThrow();

    // Teardown, in the CO's order.
    for (const [id, stage, pub] of [
      [volumeId, staging, target],
      [restoredId, stagingRestored, targetRestored],
    ] as const) {
      await node.nodeUnpublishVolume({ volumeId: id, targetPath: pub });
      await node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: stage });
      await controller.controllerUnpublishVolume({ volumeId: id, nodeId: String(DROPLET) });
      await controller.deleteVolume({ volumeId: id });
    }
    await controller.deleteSnapshot({ snapshotId: snapshot?.snapshotId ?? "" });
    expect(sim.volumes()).toEqual([]);
    expect(await mountsUnder(join(dir, "pods"))).toEqual([]);
    expect(await mountsUnder(join(dir, "staging"))).toEqual([]);
  });

  it("block volumes: stage and publish the raw device, stats report the device size", async () => {
    const { controller, node } = driver.clients;
    const { volume } = await controller.createVolume({
      name: "pvc-e2e-block",
      capacityRange: { requiredBytes: BigInt(GIB), limitBytes: 0n },
      volumeCapabilities: [blockCapability()],
    });
    const volumeId = volume?.volumeId ?? "";
    const staging = join(dir, "staging", "block");
    const target = join(dir, "pods", "block", "dev");
    await mkdir(join(dir, "pods", "block"), { recursive: true });
    const { publishContext } = await controller.controllerPublishVolume({
      volumeId,
      nodeId: String(DROPLET),
      volumeCapability: blockCapability(),
      volumeContext: volume?.volumeContext,
    });
    await node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: blockCapability(), publishContext });
    await node.nodePublishVolume({
      volumeId,
      stagingTargetPath: staging,
      targetPath: target,
      volumeCapability: blockCapability(),
      publishContext,
    });
    const stats = await node.nodeGetVolumeStats({ volumeId, volumePath: target });
    expect(stats.usage.find((u) => u.unit === VolumeUsage_Unit.BYTES)?.total).toBe(BigInt(GIB));
    await node.nodeUnpublishVolume({ volumeId, targetPath: target });
    await node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });
    await controller.controllerUnpublishVolume({ volumeId, nodeId: String(DROPLET) });
    await controller.deleteVolume({ volumeId });
  });

  it("NodeStageVolume without the volume name in publish_context is INVALID_ARGUMENT", async () => {
    const staging = join(dir, "staging", "bad");
    await expectCode(
      driver.clients.node.nodeStageVolume({
        volumeId: "v",
        stagingTargetPath: staging,
        volumeCapability: mountCapability(),
        publishContext: {},
      }),
      Code.InvalidArgument,
    );
  });
});

describe("DigitalOcean driver in node mode (no token)", () => {
  it("answers NodeGetInfo from the metadata service without any API request, and serves no controller RPCs", async () => {
    const dir = await makeTestDir("do-node-mode");
    const sim = await DoSimulator.start({ localDropletId: 9090, region: "blr1" });
    const driver = await startDriver(dir, simFlags(sim, join(dir, "by-id")));
    try {
      expect(driver.config.mode).toBe("node");
      const info = await driver.clients.node.nodeGetInfo({});
      expect(info).toMatchObject({ nodeId: "9090", maxVolumesPerNode: 7n });
      expect(info.accessibleTopology?.segments).toEqual({ region: "blr1" });
      const caps = await driver.clients.identity.getPluginCapabilities({});
      // As the Go driver and the spec have it: the plugin as a whole has a controller, so every instance says so.
      expect(caps.capabilities.some((c) => c.type.case === "service" && c.type.value.type === ServiceType.CONTROLLER_SERVICE)).toBe(true);
      await expectCode(driver.clients.controller.createVolume({ name: "x", volumeCapabilities: [mountCapability()] }), Code.Unimplemented);
      expect(sim.apiRequests()).toBe(0);
    } finally {
      await driver.stop();
      await sim.stop();
      await removeTestDir(dir);
    }
  });

  it("fails to start off a droplet with a message naming the metadata service", async () => {
    const dir = await makeTestDir("do-node-off");
    try {
      await expect(startDriver(dir, ["--metadata-url", "http://127.0.0.1:9/metadata/v1/"])).rejects.toThrow(/metadata service.*droplet/);
    } finally {
      await removeTestDir(dir);
    }
  });
});
