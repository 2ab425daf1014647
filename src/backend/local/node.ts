import { access, constants, realpath, stat } from "node:fs/promises";
import type { Config } from "../../config.js";
import type { Logger } from "../../log/logger.js";
import { setTimeout as sleep } from "node:timers/promises";
import { Aborted, FailedPrecondition, NotFound } from "../../errors.js";
import type { NodeBackend, NodeInfo, StringMap, VolumeCondition } from "../backend.js";
import {
  attachLoop,
  blockDeviceNumber,
  blockDeviceSize,
  detachLoop,
  findExecutable,
  loopBackingFile,
  loopDevicesForIncludingDeleted,
  mountsOfDevice,
  readMountInfo,
  refreshLoopCapacity,
} from "../../mounter/index.js";
import { isLocalId, nodeTopologyKey, volumeImagePath } from "./layout.js";
import { requireOnNode, volumeNodeOf } from "./local-ids.js";

function isFile(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isFile(),
    () => false,
  );
}

/** How long an unstage waits for a loop device that another process holds open to be let go. */
const DETACH_WAIT_MS = 10_000;

/**
 * `losetup --detach` of a loop device that another process has open (udev or
 * blkid probing it, a tool still reading it) succeeds at once, but the kernel
 * only detaches the device on its last close. Wait for that, so that an
 * unstaged volume is really free (DeleteVolume refuses a volume with a loop
 * device); past the bound the unstage fails ABORTED and is retried.
 */
async function untilDetached(volumeId: string, device: string, backing: string | undefined, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + DETACH_WAIT_MS;
  while (backing !== undefined && (await loopBackingFile(device)) === backing) {
    if (Date.now() > deadline)
      throw Aborted(
        "volume %s: loop device %s is held open by another process and is detached only when it closes it; retry",
        volumeId,
        device,
      );
    await sleep(20, undefined, { signal });
  }
}

/**
 * The node side of the local backend: a volume is its image file under the
 * data directory, attached to a loop device on stage (an existing loop for the
 * same file is reused) and detached on unstage once nothing uses it.
 */
export async function openLocalNode(config: Config, log: Logger): Promise<NodeBackend> {
  const dataDir = config.local.dataDir;
  const info: NodeInfo = {
    nodeId: config.nodeId,
    maxVolumesPerNode: config.volumeLimit,
    accessibleTopology: { [nodeTopologyKey(config.driverName)]: config.nodeId },
  };

  function imageOf(volumeId: string): string | undefined {
    return isLocalId(volumeId) ? volumeImagePath(dataDir, volumeId) : undefined;
  }

  return {
    nodeInfo: () => Promise.resolve(info),

    async attachDevice(volumeId: string, _publishContext: StringMap, _volumeContext: StringMap, signal: AbortSignal): Promise<string> {
      const image = imageOf(volumeId);
      const fileSize =
        image === undefined
          ? undefined
          : await stat(image).then(
              (s) => (s.isFile() ? s.size : undefined),
              () => undefined,
            );
      if (image === undefined || fileSize === undefined)
        throw NotFound("volume %s does not exist on this node (no image file in %s)", volumeId, dataDir);
      const device = await attachLoop(image, { signal });
      // A reused loop device keeps the size it had when attached; the image may have grown since.
      if ((await blockDeviceSize(device)) < fileSize) await refreshLoopCapacity(device, signal);
      log.debug({ volumeId, device, image }, "local volume attached");
      return device;
    },

    async detachDevice(volumeId: string, devicePath: string | undefined, signal: AbortSignal): Promise<void> {
      const image = imageOf(volumeId);
      if (image === undefined) return;
      const devices = new Set(await loopDevicesForIncludingDeleted(image));
      // The staged device is detached too if it is a loop over this volume's image (whatever its name now).
      if (devicePath !== undefined) {
        const file = await realpath(image).catch(() => image);
        const backing = await loopBackingFile(devicePath);
        if (backing === file || backing === `${file} (deleted)`) devices.add(devicePath);
      }
      if (devices.size === 0) return;
      const entries = await readMountInfo();
      for (const device of devices) {
        const number = await blockDeviceNumber(device).catch(() => undefined);
        if (number === undefined) continue; // already gone
        const users = mountsOfDevice(entries, number, device);
        if (users.length > 0) {
          throw FailedPrecondition(
            "volume %s: loop device %s is still mounted at %s; unpublish and unstage it first",
            volumeId,
            device,
            users.map((m) => m.mountPoint).join(", "),
          );
        }
        const backing = await loopBackingFile(device);
        await detachLoop(device, signal);
        await untilDetached(volumeId, device, backing, signal);
        log.debug({ volumeId, device }, "local volume detached");
      }
    },

    async requireOwnVolume(volumeId: string): Promise<void> {
      const owner = volumeNodeOf(volumeId);
      if (owner === undefined || owner === config.nodeId) return;
      // A data dir keeps serving what it holds when its node is renamed.
      const image = imageOf(volumeId);
      if (image === undefined || !(await isFile(image))) requireOnNode(volumeId, "volume", config.nodeId);
    },

    async storageCondition(volumeId: string): Promise<VolumeCondition | undefined> {
      const image = imageOf(volumeId);
      if (image === undefined) return undefined;
      const present = await isFile(image);
      // A loop device keeps a deleted image alive: the mount works, but the data is gone once it is unstaged.
      return present
        ? { abnormal: false, message: `the volume's image ${image} is present` }
        : { abnormal: true, message: `the volume's image ${image} is missing from the data dir: its data is lost once it is unstaged` };
    },

    async attachedDevices(volumeId: string): Promise<readonly string[]> {
      const image = imageOf(volumeId);
      return image === undefined ? [] : loopDevicesForIncludingDeleted(image);
    },

    health: {
      name: "local node backend",
      async check() {
        if (!(await findExecutable("losetup"))) throw new Error("losetup is not installed; install the mount package (util-linux)");
        try {
          await access("/dev/loop-control", constants.R_OK | constants.W_OK);
        } catch {
          throw new Error("/dev/loop-control is not available: load the loop module (modprobe loop) and run the plugin privileged");
        }
        return "ready";
      },
    },

    close: () => Promise.resolve(),
  };
}
