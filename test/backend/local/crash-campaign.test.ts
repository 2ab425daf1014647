// @module-tag needs-root
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { CallOptions } from "@connectrpc/connect";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../../src/csi/client.js";
import { DRIVER_ENTRY, startDriver, type DriverProcess } from "../../support/driver-process.js";
import { RetryStats, withRetries, type RetryPolicy } from "../../lifecycle/retry.js";
import { loopDevicesUnder, mountsUnder } from "../../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { MiB, mountCapability } from "../../driver/controller-harness.js";
import { expectConsistent } from "./local-fixtures.js";

// A randomized, mixed crash campaign: several volume lives (create, snapshot, clone or restore, expand,
// controller publish, stage, publish, unpublish, unstage, controller unpublish, deletes) run concurrently
// against the built driver (local backend, all-in-one) while it is SIGKILLed at seeded moments and
// restarted on the same data directory. Every call is retried as a CO would, until it converges. After
// each round the state loads and matches the files, every volume and snapshot is gone, and no loop device
// or mount is left. CRASH_ROUNDS and CRASH_SEED make a longer or different campaign.
//
// The driver runs as a container runs it: as the first process of its own PID namespace, so that killing
// it kills the host tools it started too (mkfs, losetup), as a container's death does; a tool left running
// would hold the loop device open and make its detach wait for the tool to end.

const SEED = Number(process.env.CRASH_SEED ?? 20_261_205);
const ROUNDS = Number(process.env.CRASH_ROUNDS ?? 5);
const NODE_ID = "crash-node";
const RETRY: RetryPolicy = { attemptTimeoutMs: 20_000, initialBackoffMs: 20, maxBackoffMs: 400, maxElapsedMs: 90_000 };

const lifePlan = fc.record({
  snapshot: fc.boolean(),
  copy: fc.constantFrom("none", "clone", "restore"),
  expand: fc.boolean(),
  node: fc.boolean(),
});
type LifePlan = typeof lifePlan extends fc.Arbitrary<infer T> ? T : never;
const roundPlan = fc.record({
  lives: fc.array(lifePlan, { minLength: 2, maxLength: 4 }),
  killsAtMs: fc.array(fc.integer({ min: 30, max: 2_500 }), { minLength: 1, maxLength: 2 }),
  downMs: fc.integer({ min: 0, max: 200 }),
});

let dir: string;
let dataDir: string;
let driver: DriverProcess | undefined;
let clients: CsiClients;
let driverArgs: string[];
/** stderr of every driver process of the campaign, for failure messages. */
let logs = "";
const stats = new RetryStats();

/** The connection is replaced at each restart; every attempt uses the current one. */
function call<T>(what: string, attempt: (c: CsiClients, options: CallOptions) => Promise<T>): Promise<T> {
  return withRetries(what, (options) => attempt(clients, options), RETRY, stats);
}

async function start(): Promise<void> {
  driver = await startDriver(join(dir, "csi.sock"), driverArgs, {
    command: ["unshare", "--pid", "--fork", "--kill-child", process.execPath, DRIVER_ENTRY],
    timeoutMs: 30_000,
  });
  clients = connectCsi(driver.endpoint);
  // The state loads: the restarted driver is ready, or the campaign fails here.
  const { ready } = await clients.identity.probe({}, { timeoutMs: 20_000 });
  expect(ready ?? true, logTail()).toBe(true);
}

/** SIGKILL the driver (and so its namespace), wait `downMs`, start it again on the same data directory. */
async function restart(downMs: number): Promise<void> {
  clients.close();
  await driver?.stop("SIGKILL");
  logs += driver?.stderr() ?? "";
  await sleep(downMs);
  await start();
}

function logTail(): string {
  return `driver log (last lines):\n${(logs + (driver?.stderr() ?? "")).split("\n").slice(-40).join("\n")}`;
}

/** One volume's life, each step retried to convergence with the same request. */
async function live(name: string, plan: LifePlan): Promise<void> {
  const capability = mountCapability();
  const createVolume = (
    volumeName: string,
    source?: { case: "volume"; value: { volumeId: string } } | { case: "snapshot"; value: { snapshotId: string } },
  ) =>
    call(`CreateVolume ${volumeName}`, (c, o) =>
      c.controller.createVolume(
        {
          name: volumeName,
          volumeCapabilities: [capability],
          capacityRange: { requiredBytes: BigInt(32 * MiB) },
          ...(source === undefined ? {} : { volumeContentSource: { type: source } }),
        },
        o,
      ),
    );
  const { volume } = await createVolume(`${name}-a`);
  const volumeId = volume?.volumeId ?? "";
  let snapshotId: string | undefined;
  if (plan.snapshot || plan.copy === "restore") {
    const { snapshot } = await call(`CreateSnapshot ${name}`, (c, o) =>
      c.controller.createSnapshot({ name: `${name}-s`, sourceVolumeId: volumeId }, o),
    );
    snapshotId = snapshot?.snapshotId ?? "";
  }
  let copyId: string | undefined;
  if (plan.copy === "clone") copyId = (await createVolume(`${name}-b`, { case: "volume", value: { volumeId } })).volume?.volumeId;
  if (plan.copy === "restore" && snapshotId !== undefined)
    copyId = (await createVolume(`${name}-b`, { case: "snapshot", value: { snapshotId } })).volume?.volumeId;
  if (plan.expand)
    await call(`ControllerExpandVolume ${name}`, (c, o) =>
      c.controller.controllerExpandVolume(
        { volumeId, capacityRange: { requiredBytes: BigInt(48 * MiB) }, volumeCapability: capability },
        o,
      ),
    );
  if (plan.node) {
    const stagingTargetPath = join(dir, "mnt", `${name}-staging`);
    const targetPath = join(dir, "mnt", `${name}-target`);
    const { publishContext } = await call(`ControllerPublishVolume ${name}`, (c, o) =>
      c.controller.controllerPublishVolume(
        { volumeId, nodeId: NODE_ID, volumeCapability: capability, volumeContext: volume?.volumeContext },
        o,
      ),
    );
    const common = { volumeId, volumeCapability: capability, publishContext, volumeContext: volume?.volumeContext };
    await call(`NodeStageVolume ${name}`, (c, o) => c.node.nodeStageVolume({ ...common, stagingTargetPath }, o));
    await call(`NodePublishVolume ${name}`, (c, o) => c.node.nodePublishVolume({ ...common, stagingTargetPath, targetPath }, o));
    await call(`NodeUnpublishVolume ${name}`, (c, o) => c.node.nodeUnpublishVolume({ volumeId, targetPath }, o));
    await call(`NodeUnstageVolume ${name}`, (c, o) => c.node.nodeUnstageVolume({ volumeId, stagingTargetPath }, o));
    await call(`ControllerUnpublishVolume ${name}`, (c, o) => c.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID }, o));
  }
  if (copyId !== undefined) {
    const id = copyId;
    await call(`DeleteVolume ${name}-b`, (c, o) => c.controller.deleteVolume({ volumeId: id }, o));
  }
  if (snapshotId !== undefined) {
    const id = snapshotId;
    await call(`DeleteSnapshot ${name}`, (c, o) => c.controller.deleteSnapshot({ snapshotId: id }, o));
  }
  await call(`DeleteVolume ${name}-a`, (c, o) => c.controller.deleteVolume({ volumeId }, o));
}

beforeAll(async () => {
  dir = await makeTestDir("crash-campaign");
  dataDir = join(dir, "data");
  await mkdir(join(dir, "mnt"), { recursive: true });
  driverArgs = [
    "--backend",
    "local",
    "--mode",
    "all",
    "--data-dir",
    dataDir,
    "--node-id",
    NODE_ID,
    "--kubelet-dir",
    join(dir, "kubelet"),
    "--log-level",
    "warn",
  ];
  await start();
});

afterAll(async () => {
  clients?.close();
  await driver?.stop("SIGKILL");
  await removeTestDir(dir);
});

describe(`SIGKILL at seeded moments during mixed concurrent volume lives (seed ${SEED}, ${ROUNDS} rounds)`, () => {
  const plans = fc.sample(roundPlan, { seed: SEED, numRuns: ROUNDS });
  let interrupted = 0;

  for (const [round, plan] of plans.entries()) {
    it(`round ${round + 1}: ${plan.lives.length} lives, ${plan.killsAtMs.length} kill(s); every call converges and nothing leaks`, {
      timeout: 240_000,
    }, async () => {
      const retriesBefore = stats.retries;
      const lives = Promise.allSettled(plan.lives.map((life, i) => live(`r${round}-l${i}`, life)));
      let done = false;
      void lives.then(() => (done = true));
      const started = Date.now();
      for (const at of [...plan.killsAtMs].sort((a, b) => a - b)) {
        await sleep(Math.max(0, at - (Date.now() - started)));
        if (done) break;
        // The restart must load the state the kill left: start() fails when the driver does not become ready.
        await restart(plan.downMs);
      }
      const failures = (await lives).filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => String(r.reason));
      expect(failures, logTail()).toEqual([]);
      if (stats.retries > retriesBefore) interrupted++;

      // One more crash between rounds: the state written by the round loads, and agrees with the files.
      await restart(0);
      const left = await expectConsistent(clients, dataDir);
      expect(left, logTail()).toEqual({ volumes: [], snapshots: [] });
      expect(await mountsUnder(dir)).toEqual([]);
      expect(await loopDevicesUnder(dir)).toEqual([]);
    });
  }

  it("the kills landed inside calls (the campaign exercised retries)", () => {
    expect(interrupted).toBeGreaterThan(0);
  });
});
