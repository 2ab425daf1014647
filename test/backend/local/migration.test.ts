// @module-tag needs-root
import { randomUUID } from "node:crypto";
import { mkdir, open, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotImagePath, snapshotsDir, stateFilePath, volumeImagePath, volumesDir } from "../../../src/backend/local/layout.js";
import { STATE_FORMAT, type LocalState } from "../../../src/backend/local/state.js";
import { connectCsi, type CsiClients } from "../../../src/csi/client.js";
import { startDriver, type DriverProcess } from "../../support/driver-process.js";
import { cleanHost, hostLeaks } from "../../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { df, mountCapability } from "../../driver/node-harness.js";
import { copyBuiltCli } from "./local-fixtures.js";

// The move from the single-node layout (one StatefulSet, one data dir, the name dobs.csi.digitalocean.com,
// ids vol-<uuid>, volumes ControllerPublished to the node) to one instance per node: the old data dir's node
// runs the DaemonSet's flags plus --driver-name dobs.csi.digitalocean.com and keeps serving every volume.

const MiB = 1024n * 1024n;
const OLD_NAME = "dobs.csi.digitalocean.com";
const NODE = "node-old";
const TOPOLOGY = { [`${OLD_NAME}/node`]: NODE };

let dir: string;
let dataDir: string;
let command: string[];
let driver: DriverProcess | undefined;
let clients: CsiClients | undefined;

async function start(): Promise<CsiClients> {
  driver = await startDriver(
    join(dir, "csi.sock"),
    ["--backend", "local", "--driver-name", OLD_NAME, "--node-deployment", "--node-id", NODE, "--data-dir", dataDir, "--log-level", "warn"],
    { command },
  );
  clients = connectCsi(driver.endpoint);
  return clients;
}

async function stop(): Promise<void> {
  clients?.close();
  clients = undefined;
  await driver?.stop("SIGTERM");
  driver = undefined;
}

async function sparseFile(path: string, size: bigint): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.truncate(Number(size));
  } finally {
    await handle.close();
  }
}

/**
 * A data dir as the single-node layout leaves it: metadata format 1, ids without a node, a volume
 * ControllerPublished to the node (an attachment record) and a snapshot of it.
 */
async function seedSingleNodeLayout(volumeId: string, snapshotId: string, size: bigint): Promise<void> {
  await mkdir(volumesDir(dataDir), { recursive: true });
  await mkdir(snapshotsDir(dataDir), { recursive: true });
  await sparseFile(volumeImagePath(dataDir, volumeId), size);
  await sparseFile(snapshotImagePath(dataDir, snapshotId), size);
  const createdAt = new Date(Date.now() - 86_400_000).toISOString();
  const state: LocalState = {
    format: STATE_FORMAT,
    lastListPosition: 2,
    volumes: {
      [volumeId]: {
        id: volumeId,
        name: "pvc-legacy",
        phase: "ready",
        sizeBytes: Number(size),
        accessTypes: ["mount"],
        fsType: "xfs",
        parameters: {},
        createdAt,
        listPosition: 1,
        attachments: [{ nodeId: NODE, readonly: false, accessType: "mount" }],
        frozenMounts: [],
      },
    },
    snapshots: {
      [snapshotId]: {
        id: snapshotId,
        name: "snapshot-legacy",
        phase: "ready",
        sourceVolumeId: volumeId,
        sizeBytes: Number(size),
        parameters: {},
        createdAt,
        listPosition: 2,
        frozenMounts: [],
      },
    },
  };
  await writeFile(stateFilePath(dataDir), JSON.stringify(state));
}

beforeAll(async () => {
  dir = await makeTestDir("migration");
  dataDir = join(dir, "data");
  command = await copyBuiltCli(dir);
});

afterAll(async () => {
  await stop();
  if (dir === undefined) return;
  const left = await hostLeaks(dir);
  await cleanHost(dir);
  await removeTestDir(dir);
  expect(left).toEqual([]);
});

describe("moving from the single-node layout to one instance per node", () => {
  it("keeps every volume and snapshot: legacy ids, the old name and topology, staged without publish, expanded on the node", async () => {
    // xfs: it grows online without CAP_SYS_RESOURCE (which some sandboxes drop even for root), from 300 MiB.
    const size = 320n * MiB;
    const volumeId = `vol-${randomUUID()}`;
    const snapshotId = `snap-${randomUUID()}`;
    await seedSingleNodeLayout(volumeId, snapshotId, size);
    const capability = mountCapability("xfs");
    const staging = join(dir, "pv", "staging");
    const target = join(dir, "pv", "target");
    await mkdir(join(dir, "pv"), { recursive: true });

    let c = await start();
    expect((await c.identity.getPluginInfo({})).name).toBe(OLD_NAME);
    expect((await c.node.nodeGetInfo({})).accessibleTopology?.segments).toEqual(TOPOLOGY);
    // Existing PVs' node affinity (the old key and value) still matches what the volumes report.
    const listed = (await c.controller.listVolumes({})).entries.map((e) => e.volume);
    expect(listed.map((v) => v?.volumeId)).toEqual([volumeId]);
    expect(listed[0]?.accessibleTopology.map((t) => t.segments)).toEqual([TOPOLOGY]);
    expect((await c.controller.listSnapshots({})).entries.map((e) => e.snapshot?.snapshotId)).toEqual([snapshotId]);

    // kubelet stages and publishes with no publish_context: there is no ControllerPublishVolume any more.
    await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: capability });
    await c.node.nodePublishVolume({ volumeId, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
    await writeFile(join(target, "data.txt"), "written before the upgrade");
    await c.node.nodeUnpublishVolume({ volumeId, targetPath: target });
    await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });

    // A restart (an upgrade of the DaemonSet's pod) keeps it.
    await stop();
    c = await start();
    await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: capability });
    await c.node.nodePublishVolume({ volumeId, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
    expect(await readFile(join(target, "data.txt"), "utf8")).toBe("written before the upgrade");

    // Expanded on the node: the image, the loop device and the filesystem.
    const before = await df(target);
    const grown = await c.node.nodeExpandVolume({
      volumeId,
      volumePath: target,
      stagingTargetPath: staging,
      capacityRange: { requiredBytes: 2n * size },
    });
    expect(grown.capacityBytes).toBe(2n * size);
    expect((await df(target)).size - before.size).toBeGreaterThan(Number(size) / 2);

    // New snapshots and restores carry the node in their ids, with the old topology.
    const { snapshot } = await c.controller.createSnapshot({ name: "snapshot-after", sourceVolumeId: volumeId });
    expect(snapshot?.snapshotId).toMatch(new RegExp(`^snap-[0-9a-f-]{36}\\.${NODE}$`));
    const { volume: restored } = await c.controller.createVolume({
      name: "pvc-restored",
      volumeCapabilities: [capability],
      capacityRange: { requiredBytes: size },
      volumeContentSource: { type: { case: "snapshot", value: { snapshotId } } },
    });
    expect(restored?.volumeId).toMatch(new RegExp(`^vol-[0-9a-f-]{36}\\.${NODE}$`));
    expect(restored?.accessibleTopology.map((t) => t.segments)).toEqual([TOPOLOGY]);

    // The attachment the old layout recorded does not hold the volume back once it is unstaged.
    await c.node.nodeUnpublishVolume({ volumeId, targetPath: target });
    await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });
    await c.controller.deleteVolume({ volumeId });
    await c.controller.deleteVolume({ volumeId: restored?.volumeId ?? "" });
    await c.controller.deleteSnapshot({ snapshotId });
    await c.controller.deleteSnapshot({ snapshotId: snapshot?.snapshotId ?? "" });
    expect((await c.controller.listVolumes({})).entries).toEqual([]);
    expect((await c.controller.listSnapshots({})).entries).toEqual([]);
    await stop();
    expect((await readdir(volumesDir(dataDir))).filter((f) => f.endsWith(".img"))).toEqual([]);
    expect((await readdir(snapshotsDir(dataDir))).filter((f) => f.endsWith(".img"))).toEqual([]);
  }, 120_000);
});
