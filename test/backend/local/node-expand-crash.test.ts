// @module-tag needs-root
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CrashPoint } from "../../../src/backend/local/crash-points.js";
import { volumeImagePath } from "../../../src/backend/local/layout.js";
import { connectCsi, type CsiClients } from "../../../src/csi/client.js";
import { startDriver, type DriverProcess } from "../../support/driver-process.js";
import { cleanHost, hostLeaks } from "../../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { df, mountCapability } from "../../driver/node-harness.js";
import { copyBuiltCli } from "./local-fixtures.js";

// With --node-deployment, NodeExpandVolume grows the image, then the loop device, then the filesystem.
// kill -9 after the image has grown and before the metadata records it: the restarted instance adopts
// the bigger image, and the kubelet's retry of NodeExpandVolume finishes the loop device and the filesystem.

const MiB = 1024n * 1024n;

let dir: string;
let command: string[];
let driver: DriverProcess | undefined;
let clients: CsiClients | undefined;

async function start(crashAt?: CrashPoint): Promise<CsiClients> {
  driver = await startDriver(
    join(dir, "csi.sock"),
    ["--backend", "local", "--node-deployment", "--node-id", "crash-node", "--data-dir", join(dir, "data"), "--log-level", "warn"],
    { command, env: crashAt ? { DO_CSI_TEST_CRASH_AT: crashAt } : {} },
  );
  clients = connectCsi(driver.endpoint);
  return clients;
}

async function stop(): Promise<void> {
  clients?.close();
  clients = undefined;
  await driver?.stop("SIGKILL");
  driver = undefined;
}

beforeAll(async () => {
  dir = await makeTestDir("node-expand-crash");
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

describe("NodeExpandVolume with --node-deployment, killed between its steps", () => {
  it("is finished by the retry after a restart: the image, the loop device and the filesystem all grow", async () => {
    // xfs: it grows online without CAP_SYS_RESOURCE (which some sandboxes drop even for root), from 300 MiB.
    const size = 320n * MiB;
    const capability = mountCapability("xfs");
    const staging = join(dir, "pv", "staging");
    const target = join(dir, "pv", "target");
    await mkdir(join(dir, "pv"), { recursive: true });

    let c = await start("volume-expand:grown");
    const { volume } = await c.controller.createVolume({
      name: "crash-grow",
      capacityRange: { requiredBytes: size },
      volumeCapabilities: [capability],
    });
    const volumeId = volume?.volumeId ?? "";
    await c.node.nodeStageVolume({ volumeId, stagingTargetPath: staging, volumeCapability: capability });
    await c.node.nodePublishVolume({ volumeId, stagingTargetPath: staging, targetPath: target, volumeCapability: capability });
    await writeFile(join(target, "keep.txt"), "kept");
    const before = await df(target);
    const request = { volumeId, volumePath: target, stagingTargetPath: staging, capacityRange: { requiredBytes: 2n * size } };

    const running = driver;
    const outcome = await c.node.nodeExpandVolume(request).then(
      () => "answered",
      (err: unknown) => (err instanceof ConnectError ? "failed" : String(err)),
    );
    await running?.exited;
    expect(running?.child.signalCode, "the instance should have died after growing the image").toBe("SIGKILL");
    expect(outcome).toBe("failed");
    // Killed after the image grew, before anything else: the filesystem has its old size.
    expect((await stat(volumeImagePath(join(dir, "data"), volumeId))).size).toBe(Number(2n * size));
    expect((await df(target)).size).toBe(before.size);
    await stop();

    c = await start();
    const listed = (await c.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
    expect(listed?.volume?.capacityBytes).toBe(2n * size);
    expect((await c.node.nodeExpandVolume(request)).capacityBytes).toBe(2n * size);
    expect((await df(target)).size - before.size).toBeGreaterThan(Number(size) / 2);
    expect(await readFile(join(target, "keep.txt"), "utf8")).toBe("kept");

    await c.node.nodeUnpublishVolume({ volumeId, targetPath: target });
    await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath: staging });
    await c.controller.deleteVolume({ volumeId });
    expect((await c.controller.listVolumes({})).entries).toEqual([]);
  }, 120_000);
});
