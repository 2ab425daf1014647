// @module-tag needs-root
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { connectCsi, type CsiClients } from "../../../src/csi/client.js";
import { snapshotImagePath, volumeImagePath } from "../../../src/backend/local/layout.js";
import { attachLoop, blockDeviceSize, detachLoop } from "../../../src/mounter/loop.js";
import { readMountInfo } from "../../../src/mounter/mountinfo.js";
import { run } from "../../../src/util/exec.js";
import { startDriver, type DriverProcess } from "../../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import {
  Code,
  expectCode,
  MiB,
  mountCapability,
  NODE_ID,
  startController,
  type ControllerHarness,
} from "../../driver/controller-harness.js";
import { copyBuiltCli, expectConsistent } from "./local-fixtures.js";

// The controller with real loop devices and a mounted ext4 filesystem on this node: online expansion,
// consistent snapshots (fsfreeze), and what happens when the process dies while a filesystem is frozen.

let dir: string;
let h: ControllerHarness | undefined;
const mounts: string[] = [];
const devices: string[] = [];

async function thawQuietly(mountPoint: string): Promise<void> {
  await run("fsfreeze", ["--unfreeze", mountPoint]).catch(() => undefined);
}

/** True when the filesystem at `mountPoint` is frozen: freezing it again fails with EBUSY. */
async function isFrozen(mountPoint: string): Promise<boolean> {
  try {
    await run("fsfreeze", ["--freeze", mountPoint], { timeoutMs: 10_000 });
  } catch (err) {
    if (/busy/i.test((err as Error).message)) return true;
    throw err;
  }
  await run("fsfreeze", ["--unfreeze", mountPoint], { timeoutMs: 10_000 });
  return false;
}

/** Attach an image, make an ext4 filesystem on it and mount it under the test dir. */
async function mountImage(image: string, name: string): Promise<{ device: string; mountPoint: string }> {
  const device = await attachLoop(image);
  devices.push(device);
  await run("mkfs.ext4", ["-q", "-F", device]);
  const mountPoint = join(dir, name);
  await mkdir(mountPoint, { recursive: true });
  await run("mount", [device, mountPoint]);
  mounts.push(mountPoint);
  return { device, mountPoint };
}

async function cleanUp(): Promise<void> {
  for (const mountPoint of mounts.splice(0).reverse()) {
    await thawQuietly(mountPoint);
    await run("umount", [mountPoint]).catch(() => run("umount", ["-l", mountPoint]).catch(() => undefined));
  }
  for (const device of devices.splice(0)) await detachLoop(device).catch(() => undefined);
}

beforeAll(async () => {
  dir = await makeTestDir("local-loop");
});
afterEach(async () => {
  await h?.stop();
  h = undefined;
  await cleanUp();
});
afterAll(async () => {
  await cleanUp();
  await removeTestDir(dir);
});

const newVolume = async (c: CsiClients, name: string, sizeBytes: number) =>
  (
    await c.controller.createVolume({
      name,
      volumeCapabilities: [mountCapability("ext4")],
      capacityRange: { requiredBytes: BigInt(sizeBytes) },
    })
  ).volume?.volumeId ?? "";

describe("with the volume attached to a loop device", () => {
  it("expands online: the attached loop device grows with the image", async () => {
    h = await startController(join(dir, "expand"));
    const volumeId = await newVolume(h.clients, "online", 32 * MiB);
    await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability("ext4") });
    const device = await attachLoop(volumeImagePath(h.dataDir, volumeId));
    devices.push(device);
    expect(await blockDeviceSize(device)).toBe(32 * MiB);
    const res = await h.clients.controller.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(80 * MiB) },
      volumeCapability: mountCapability("ext4"),
    });
    expect(res).toMatchObject({ capacityBytes: BigInt(80 * MiB), nodeExpansionRequired: true });
    expect(await blockDeviceSize(device)).toBe(80 * MiB);
  });

  it("refuses to delete a volume whose image is still attached (FAILED_PRECONDITION), then deletes it once detached", async () => {
    h = await startController(join(dir, "attached"));
    const volumeId = await newVolume(h.clients, "attached", 16 * MiB);
    const device = await attachLoop(volumeImagePath(h.dataDir, volumeId));
    devices.push(device);
    await expectCode(h.clients.controller.deleteVolume({ volumeId }), Code.FailedPrecondition, new RegExp(`still attached to ${device}`));
    await detachLoop(device);
    await h.clients.controller.deleteVolume({ volumeId });
  });

  it("freezes a mounted filesystem for the snapshot: unsynced writes are in it, and the filesystem is thawed after", async () => {
    h = await startController(join(dir, "freeze"));
    const volumeId = await newVolume(h.clients, "frozen", 64 * MiB);
    const { mountPoint } = await mountImage(volumeImagePath(h.dataDir, volumeId), "mnt-freeze");
    const data = randomBytes(512 * 1024);
    // Written through the page cache and not synced: without a freeze it is not in the image yet.
    await writeFile(join(mountPoint, "unsynced.bin"), data);

    // Control: a plain copy of the image made now does not contain the file.
    const control = join(dir, "control.img");
    await run("cp", ["--sparse=always", volumeImagePath(h.dataDir, volumeId), control]);
    await expect(run("debugfs", ["-R", "cat /unsynced.bin", control])).resolves.toMatchObject({ stdout: "" });

    const { snapshot } = await h.clients.controller.createSnapshot({ name: "frozen-snap", sourceVolumeId: volumeId });
    const dumped = join(dir, "dumped.bin");
    await run("debugfs", ["-R", `dump /unsynced.bin ${dumped}`, snapshotImagePath(h.dataDir, snapshot?.snapshotId ?? "")]);
    expect((await readFile(dumped)).equals(data)).toBe(true);
    expect(await isFrozen(mountPoint)).toBe(false);
  });
});

describe("kill -9 while a filesystem is frozen for a snapshot", () => {
  let driver: DriverProcess | undefined;
  afterEach(async () => {
    await driver?.stop("SIGKILL");
    driver = undefined;
  });

  it("the restart thaws it, and the retried snapshot succeeds", async () => {
    const base = join(dir, "crash-frozen");
    const dataDir = join(base, "data");
    await mkdir(base, { recursive: true });
    const command = await copyBuiltCli(base);
    const start = async (env: NodeJS.ProcessEnv = {}) => {
      await driver?.stop("SIGKILL");
      driver = await startDriver(
        join(base, "csi.sock"),
        ["--backend", "local", "--mode", "controller", "--data-dir", dataDir, "--node-id", NODE_ID, "--log-level", "warn"],
        { command, env },
      );
      return connectCsi(driver.endpoint);
    };

    let c = await start();
    const volumeId = await newVolume(c, "to-freeze", 64 * MiB);
    c.close();
    const { mountPoint } = await mountImage(volumeImagePath(dataDir, volumeId), "mnt-crash");
    expect((await readMountInfo()).some((m) => m.mountPoint === mountPoint)).toBe(true);

    c = await start({ DO_CSI_TEST_CRASH_AT: "snapshot-create:frozen" });
    const dying = driver;
    await expect(c.controller.createSnapshot({ name: "interrupted", sourceVolumeId: volumeId })).rejects.toThrow();
    await dying?.exited;
    c.close();
    expect(await isFrozen(mountPoint)).toBe(true);

    c = await start();
    expect(await isFrozen(mountPoint)).toBe(false);
    await expectConsistent(c, dataDir);
    const { snapshot } = await c.controller.createSnapshot({ name: "interrupted", sourceVolumeId: volumeId });
    expect(snapshot?.readyToUse).toBe(true);
    expect(await isFrozen(mountPoint)).toBe(false);
    await expectConsistent(c, dataDir);
    c.close();
  });
});
