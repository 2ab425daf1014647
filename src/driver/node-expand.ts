import { isAbsolute } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Logger } from "../log/logger.js";
import { FailedPrecondition, Internal, InvalidArgument, NotFound, OutOfRange, Unavailable } from "../errors.js";
import type { NodeExpandVolumeRequest, NodeExpandVolumeResponseSchema } from "../gen/csi/v1/csi_pb.js";
import { CommandError } from "../util/exec.js";
import {
  blockDeviceSize,
  canGrowOnline,
  canonicalPath,
  growFilesystem,
  isReadOnlyFilesystem,
  isReadOnlyMount,
  mountsOfDevice,
  readMountInfo,
  refreshDeviceSize,
  type MountEntry,
  type MountedFilesystem,
} from "../mounter/index.js";
import { checkNodeMaps, checkPathSize, checkedPath, expandRules, parseCapability, requiredBytes, requireVolumeId } from "./node-request.js";
import { parseCapacityRange } from "./capacity.js";
import { growOwnedStorage } from "./volume-growth.js";
import { filesystemNeedsGrowth, inspectVolumePath, requireFilesystemTools, requireVolumeDevice, type NodeEnv } from "./node-volume.js";

type ExpandResponse = MessageInitShape<typeof NodeExpandVolumeResponseSchema>;

/**
 * Grow a staged or published volume on the node: with --node-deployment first
 * its storage (the image in this node's pool, as ControllerExpandVolume does
 * elsewhere), then make the device show its new size (a loop device re-reads
 * its file, a SCSI disk is rescanned), then grow the filesystem online. Each
 * step is skipped when already done, so a retry after a crash finishes the job.
 */
export async function expandVolume(env: NodeEnv, req: NodeExpandVolumeRequest, signal: AbortSignal, log: Logger): Promise<ExpandResponse> {
  const volumeId = requireVolumeId(req.volumeId);
  if (req.volumePath === "") throw InvalidArgument("volume_path is required");
  checkPathSize(req.volumePath, "volume_path");
  checkNodeMaps({ secrets: req.secrets });
  const required = requiredBytes(req.capacityRange);
  const capability = req.volumeCapability ? parseCapability(req.volumeCapability, expandRules(env.singleNodeMultiWriter)) : undefined;
  const stagingPath =
    req.stagingTargetPath === "" ? undefined : await canonicalPath(checkedPath(req.stagingTargetPath, "staging_target_path"));
  if (!isAbsolute(req.volumePath)) throw NotFound("volume %s is not staged or published at %s", volumeId, req.volumePath);

  return env.inflight.run([`volume:${volumeId}`], "NodeExpandVolume", async () => {
    const volumePath = await canonicalPath(checkedPath(req.volumePath, "volume_path"));
    const entries = await readMountInfo();
    const found = await inspectVolumePath(volumePath, volumeId, entries);
    if (found.kind === "corrupt") throw Internal("the mount at %s is broken (%s); it cannot be expanded", volumePath, found.message);
    if ((found.kind !== "filesystem" && found.kind !== "block") || found.devicePath === undefined) {
      throw NotFound("volume %s is not staged or published at %s", volumeId, volumePath);
    }
    await requireVolumeDevice(env, volumeId, volumePath, found.device, stagingPath, entries, signal);
    const isBlock = found.kind === "block";
    if (capability !== undefined && (capability.accessType === "block") !== isBlock) {
      throw InvalidArgument(
        "volume_capability asks for %s access, but %s holds the volume %s",
        capability.accessType,
        volumePath,
        isBlock ? "as a block device" : "as a mounted filesystem",
      );
    }

    // The node owns the storage (--node-deployment): grow the image first, as ControllerExpandVolume would.
    if (env.storage !== undefined && req.capacityRange !== undefined) {
      await growOwnedStorage(env.storage, volumeId, parseCapacityRange(req.capacityRange), signal);
    }

    const device = found.devicePath;
    let size = await blockDeviceSize(device);
    if (required === 0n || BigInt(size) < required) {
      await refreshDeviceSize(device, signal);
      size = await blockDeviceSize(device);
    }
    if (BigInt(size) < required) {
      throw Unavailable(
        "the device of volume %s (%s) has %d bytes, less than the requested %s: the controller expansion has not reached this node yet; retry later",
        volumeId,
        device,
        size,
        required,
      );
    }
    const limit = req.capacityRange?.limitBytes ?? 0n;
    if (limit > 0n && BigInt(size) > limit) {
      throw OutOfRange("the device of volume %s already has %d bytes, more than limit_bytes %s", volumeId, size, limit);
    }
    if (!isBlock) await growMountedFilesystem(volumeId, found, device, stagingPath, entries, signal, log);
    return { capacityBytes: BigInt(size) };
  });
}

async function growMountedFilesystem(
  volumeId: string,
  found: MountedFilesystem,
  device: string,
  stagingPath: string | undefined,
  entries: readonly MountEntry[],
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  const fsType = found.entry.fsType;
  if (!canGrowOnline(fsType))
    throw FailedPrecondition("volume %s holds a %s filesystem, which this plugin cannot grow while it is in use", volumeId, fsType);
  await requireFilesystemTools(fsType);
  const mountPoint = writableMountPoint(entries, found, device, stagingPath);
  if (!(await filesystemNeedsGrowth(device, fsType, mountPoint ?? found.entry.mountPoint, signal))) return;
  if (mountPoint === undefined)
    throw FailedPrecondition("every mount of volume %s is read-only, so its filesystem cannot be grown online", volumeId);
  log.info({ volumeId, device, fsType, mountPoint }, "growing the filesystem online");
  try {
    await growFilesystem(device, fsType, mountPoint);
  } catch (err) {
    if (err instanceof CommandError && /Permission denied|Operation not permitted/i.test(err.stderr) && fsType.startsWith("ext")) {
      throw Internal(
        "%s; growing a mounted ext filesystem needs the CAP_SYS_RESOURCE capability: run the node plugin privileged",
        err.message,
      );
    }
    throw err;
  }
}

/** A read-write mount of the filesystem to grow it through: the staging mount if it is one, else any other. */
function writableMountPoint(
  entries: readonly MountEntry[],
  found: MountedFilesystem,
  device: string,
  stagingPath: string | undefined,
): string | undefined {
  const mounts = mountsOfDevice(entries, found.device, device).filter(
    (m) => m.fsType === found.entry.fsType && !isReadOnlyMount(m) && !isReadOnlyFilesystem(m),
  );
  return (mounts.find((m) => m.mountPoint === stagingPath) ?? mounts[0])?.mountPoint;
}
