// @module-tag needs-root
import { execFile } from "node:child_process";
import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { CrashPoint } from "../../src/backend/local/crash-points.js";
import { snapshotImagePath, stateFilePath, volumeImagePath } from "../../src/backend/local/layout.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { GroupControllerServiceCapability_RPC_Type, PluginCapability_Service_Type } from "../../src/gen/csi/v1/csi_pb.js";
import { copyBuiltCli } from "../backend/local/local-fixtures.js";
import { startDriver, type DriverProcess } from "../support/driver-process.js";
import { cleanHost, hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  blockCapability,
  Code,
  type ControllerHarness,
  expectCode,
  MiB,
  mountCapability,
  NODE_ID,
  startController,
} from "./controller-harness.js";

// Volume group snapshots on the local backend, for real: three mounted ext4 volumes written in turn by a
// writer that never stops, cut together, restored, checked with fsck and for one moment across the group;
// the spec's errors; and a kill -9 while the members are frozen, after which a restart thaws them.

const exec = promisify(execFile);

let dir: string;
let h: ControllerHarness;
const staged: { volumeId: string; staging: string }[] = [];

beforeAll(async () => {
  dir = await makeTestDir("group-snapshots");
  h = await startController(dir, ["--mode", "all"]);
});
afterEach(async () => {
  for (const { volumeId, staging } of staged.splice(0)) {
    await exec("fsfreeze", ["--unfreeze", staging]).catch(() => undefined);
    await h.clients.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging }).catch(() => undefined);
    await h.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID }).catch(() => undefined);
  }
  const left = await hostLeaks(dir);
  await cleanHost(dir);
  expect(left).toEqual([]);
});
afterAll(async () => {
  await h?.stop();
  await cleanHost(dir);
  await removeTestDir(dir);
});

async function createVolume(name: string, capability: AnyCapability = mountCapability("ext4")): Promise<string> {
  const { volume } = await h.clients.controller.createVolume({
    name,
    capacityRange: { requiredBytes: BigInt(64 * MiB) },
    volumeCapabilities: [capability],
  });
  return volume?.volumeId ?? "";
}

/** ControllerPublish + NodeStage as a CO would; returns the mount (or the staging path of a block volume). */
type AnyCapability = ReturnType<typeof mountCapability> | ReturnType<typeof blockCapability>;

async function stage(c: CsiClients, volumeId: string, capability: AnyCapability = mountCapability("ext4")): Promise<string> {
  const staging = join(dir, `staging-${volumeId.slice(4, 12)}`);
  const { publishContext } = await c.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: capability });
  await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: capability, publishContext });
  staged.push({ volumeId, staging });
  return staging;
}

/** Read a file out of an ext4 image without mounting it. */
async function readFromImage(image: string, path: string): Promise<string> {
  const { stdout } = await exec("debugfs", ["-R", `cat ${path}`, image]);
  return stdout;
}

const groups = () => h.clients.groupController;

describe("CreateVolumeGroupSnapshot: one moment across the group", () => {
  it("is advertised: GROUP_CONTROLLER_SERVICE and CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT", async () => {
    const plugin = await h.clients.identity.getPluginCapabilities({});
    expect(
      plugin.capabilities.some(
        (c) => c.type.case === "service" && c.type.value.type === PluginCapability_Service_Type.GROUP_CONTROLLER_SERVICE,
      ),
    ).toBe(true);
    const caps = await groups().groupControllerGetCapabilities({});
    expect(caps.capabilities.map((c) => (c.type.case === "rpc" ? c.type.value.type : undefined))).toEqual([
      GroupControllerServiceCapability_RPC_Type.CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT,
    ]);
  });

  it("cuts three volumes under a running writer at one moment; each restored filesystem is clean and the counters agree", async () => {
    const ids = [await createVolume("group-a"), await createVolume("group-b"), await createVolume("group-c")];
    const mounts: string[] = [];
    for (const id of ids) mounts.push(await stage(h.clients, id));
    for (const [i, mount] of mounts.entries()) await exec("sh", ["-c", `echo volume-${i} > ${mount}/identity`]);
    // The writer bumps a counter in a, then b, then c, forever: at any instant a >= b >= c >= a - 1.
    const script = `n=0; while :; do n=$((n+1)); for d in ${mounts.join(" ")}; do echo $n > $d/counter.new && mv $d/counter.new $d/counter; done; done`;
    const writer: ChildProcess = spawn("sh", ["-c", script], { stdio: "ignore" });
    let group: Awaited<ReturnType<ReturnType<typeof groups>["createVolumeGroupSnapshot"]>>["groupSnapshot"];
    try {
      // The writer has been through every volume at least once, whatever the machine's load.
      for (let i = 0; i < 200; i++) {
        if (await readFile(join(mounts[2] ?? "", "counter"), "utf8").then(Number, () => 0)) break;
        await sleep(25);
      }
      await sleep(100);
      ({ groupSnapshot: group } = await groups().createVolumeGroupSnapshot({ name: "consistent", sourceVolumeIds: ids }));
      await sleep(200);
    } finally {
      writer.kill("SIGKILL");
    }
    expect(group?.readyToUse).toBe(true);
    expect(group?.snapshots.map((s) => s.sourceVolumeId).sort()).toEqual([...ids].sort());
    for (const s of group?.snapshots ?? []) expect(s.groupSnapshotId).toBe(group?.groupSnapshotId);
    // The live volumes are at or past the moment cut.
    const live = Number(await readFile(join(mounts[0] ?? "", "counter"), "utf8"));

    const counters: number[] = [];
    for (const [i, id] of ids.entries()) {
      const member = group?.snapshots.find((s) => s.sourceVolumeId === id);
      const { volume } = await h.clients.controller.createVolume({
        name: `restored-${i}`,
        volumeCapabilities: [mountCapability("ext4")],
        volumeContentSource: { type: { case: "snapshot", value: { snapshotId: member?.snapshotId ?? "" } } },
      });
      const image = volumeImagePath(h.dataDir, volume?.volumeId ?? "");
      await exec("fsck.ext4", ["-n", "-f", image]);
      expect(await readFromImage(image, "/identity")).toBe(`volume-${i}\n`);
      counters.push(Number(await readFromImage(image, "/counter")));
      await h.clients.controller.deleteVolume({ volumeId: volume?.volumeId ?? "" });
    }
    const [a = 0, b = 0, c = 0] = counters;
    expect(c).toBeGreaterThan(0);
    expect(a >= b && b >= c && a - c <= 1, `counters ${counters.join(", ")} are not one moment`).toBe(true);
    expect(live).toBeGreaterThanOrEqual(a);

    await groups().deleteVolumeGroupSnapshot({
      groupSnapshotId: group?.groupSnapshotId ?? "",
      snapshotIds: group?.snapshots.map((s) => s.snapshotId) ?? [],
    });
    for (const id of ids) await h.clients.controller.controllerUnpublishVolume({ volumeId: id, nodeId: NODE_ID }).catch(() => undefined);
  });
});

describe("the spec's codes", () => {
  it("idempotent by name, ALREADY_EXISTS for another set, NOT_FOUND for an unknown member, members deletable only with their group", async () => {
    const [x, y, z] = [await createVolume("codes-x"), await createVolume("codes-y"), await createVolume("codes-z")];
    const first = await groups().createVolumeGroupSnapshot({ name: "codes", sourceVolumeIds: [x, y] });
    const again = await groups().createVolumeGroupSnapshot({ name: "codes", sourceVolumeIds: [y, x] });
    expect(again.groupSnapshot?.groupSnapshotId).toBe(first.groupSnapshot?.groupSnapshotId);
    const group = first.groupSnapshot;
    const groupId = group?.groupSnapshotId ?? "";
    const members = group?.snapshots.map((s) => s.snapshotId) ?? [];
    await expectCode(groups().createVolumeGroupSnapshot({ name: "codes", sourceVolumeIds: [x, z] }), Code.AlreadyExists, /codes/);
    await expectCode(
      groups().createVolumeGroupSnapshot({ name: "missing", sourceVolumeIds: [x, "vol-00000000-0000-4000-8000-000000000000"] }),
      Code.NotFound,
    );
    await expectCode(
      groups().createVolumeGroupSnapshot({ name: "twice", sourceVolumeIds: [x, x] }),
      Code.InvalidArgument,
      /more than once/,
    );
    await expectCode(groups().createVolumeGroupSnapshot({ name: "empty", sourceVolumeIds: [] }), Code.InvalidArgument, /source_volume_ids/);
    await expectCode(groups().createVolumeGroupSnapshot({ name: "", sourceVolumeIds: [x] }), Code.InvalidArgument, /name/);
    const otherNode = x.replace(/\.[^.]+$/, ".another-node");
    await expectCode(
      groups().createVolumeGroupSnapshot({ name: "spread", sourceVolumeIds: [x, otherNode] }),
      Code.FailedPrecondition,
      /other nodes/,
    );

    // Members are ordinary snapshots: listed with their group, restorable, not deletable alone.
    const listed = await h.clients.controller.listSnapshots({ snapshotId: members[0] ?? "" });
    expect(listed.entries[0]?.snapshot?.groupSnapshotId).toBe(groupId);
    await expectCode(
      h.clients.controller.deleteSnapshot({ snapshotId: members[0] ?? "" }),
      Code.InvalidArgument,
      /DeleteVolumeGroupSnapshot/,
    );

    const got = await groups().getVolumeGroupSnapshot({ groupSnapshotId: groupId, snapshotIds: [...members].reverse() });
    expect(got.groupSnapshot?.snapshots.length).toBe(2);
    await expectCode(
      groups().getVolumeGroupSnapshot({ groupSnapshotId: groupId, snapshotIds: [members[0] ?? ""] }),
      Code.InvalidArgument,
      /do not match/,
    );
    await expectCode(groups().getVolumeGroupSnapshot({ groupSnapshotId: "group-nope", snapshotIds: ["snap-nope"] }), Code.NotFound);
    await expectCode(
      groups().deleteVolumeGroupSnapshot({ groupSnapshotId: groupId, snapshotIds: [members[1] ?? ""] }),
      Code.InvalidArgument,
    );

    await groups().deleteVolumeGroupSnapshot({ groupSnapshotId: groupId, snapshotIds: members });
    await groups().deleteVolumeGroupSnapshot({ groupSnapshotId: groupId, snapshotIds: members });
    for (const id of members) await expect(readFile(snapshotImagePath(h.dataDir, id))).rejects.toThrow(/ENOENT/);
    await expectCode(groups().getVolumeGroupSnapshot({ groupSnapshotId: groupId, snapshotIds: members }), Code.NotFound);
    for (const id of [x, y, z]) await h.clients.controller.deleteVolume({ volumeId: id });
  });

  it("refuses a member attached as a raw block device, whose writes cannot be paused", async () => {
    const block = await createVolume("raw-member", blockCapability());
    const other = await createVolume("raw-partner");
    await stage(h.clients, block, blockCapability());
    await expectCode(
      groups().createVolumeGroupSnapshot({ name: "raw", sourceVolumeIds: [block, other] }),
      Code.FailedPrecondition,
      /raw block/,
    );
    const state = JSON.parse(await readFile(stateFilePath(h.dataDir), "utf8")) as { groups?: Record<string, unknown> };
    expect(Object.keys(state.groups ?? {})).toEqual([]);
  });
});

describe("kill -9 while the members are frozen", () => {
  let crashDir: string;
  let command: string[];
  let driver: DriverProcess | undefined;
  beforeAll(async () => {
    crashDir = await makeTestDir("group-snapshot-crash");
    command = await copyBuiltCli(crashDir);
  });
  afterAll(async () => {
    await driver?.stop("SIGKILL");
    await exec("sh", ["-c", `for m in ${crashDir}/staging-*; do fsfreeze --unfreeze $m 2>/dev/null; done; true`]);
    await cleanHost(crashDir);
    await removeTestDir(crashDir);
  });

  async function start(crashAt?: CrashPoint): Promise<CsiClients> {
    driver = await startDriver(
      join(crashDir, "csi.sock"),
      ["--backend", "local", "--mode", "all", "--data-dir", join(crashDir, "data"), "--node-id", NODE_ID, "--log-level", "warn"],
      { command, env: crashAt ? { DO_CSI_TEST_CRASH_AT: crashAt } : {} },
    );
    return connectCsi(driver.endpoint);
  }

  it("the restart thaws every member and keeps no part of the group", async () => {
    let c = await start("group-snapshot-create:frozen");
    const ids: string[] = [];
    const mounts: string[] = [];
    for (const name of ["crash-a", "crash-b"]) {
      const { volume } = await c.controller.createVolume({
        name,
        capacityRange: { requiredBytes: BigInt(64 * MiB) },
        volumeCapabilities: [mountCapability("ext4")],
      });
      const id = volume?.volumeId ?? "";
      ids.push(id);
      const staging = join(crashDir, `staging-${name}`);
      const { publishContext } = await c.controller.controllerPublishVolume({
        volumeId: id,
        nodeId: NODE_ID,
        volumeCapability: mountCapability("ext4"),
      });
      await c.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("ext4"), publishContext });
      mounts.push(staging);
    }
    const dying = driver;
    const outcome = await c.groupController.createVolumeGroupSnapshot({ name: "crash", sourceVolumeIds: ids }).then(
      () => "answered",
      (err: unknown) => String(err),
    );
    expect(outcome).not.toBe("answered");
    await dying?.exited;
    expect(dying?.child.signalCode).toBe("SIGKILL");
    c.close();
    // Frozen: a write would block. (fsfreeze --freeze on a frozen filesystem fails with EBUSY.)
    await expect(exec("fsfreeze", ["--freeze", mounts[0] ?? ""])).rejects.toThrow();

    c = await start();
    for (const mount of mounts) await exec("timeout", ["10", "sh", "-c", `echo thawed > ${mount}/after-restart`]);
    const state = JSON.parse(await readFile(stateFilePath(join(crashDir, "data")), "utf8")) as {
      groups?: Record<string, unknown>;
      snapshots: Record<string, unknown>;
    };
    expect(Object.keys(state.groups ?? {})).toEqual([]);
    expect(Object.keys(state.snapshots)).toEqual([]);
    for (const [i, id] of ids.entries()) {
      await c.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: mounts[i] ?? "" });
      await c.controller.controllerUnpublishVolume({ volumeId: id, nodeId: NODE_ID });
      await c.controller.deleteVolume({ volumeId: id });
    }
    c.close();
    expect(await hostLeaks(crashDir)).toEqual([]);
  });
});
