import { isAbsolute } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Internal, InvalidArgument, NotFound } from "../errors.js";
import { VolumeUsage_Unit, type NodeGetVolumeStatsRequest, type NodeGetVolumeStatsResponseSchema } from "../gen/csi/v1/csi_pb.js";
import {
  blockDeviceSize,
  canonicalPath,
  devicePathOf,
  filesystemUsage,
  isReadOnlyFilesystem,
  isReadOnlyMount,
  readMountInfo,
  type FilesystemUsage,
  type MountedFilesystem,
} from "../mounter/index.js";
import { checkPathSize, checkedPath, requireVolumeId } from "./node-request.js";
import { inspectVolumePath, requireVolumeDevice, stagedAt, type NodeEnv } from "./node-volume.js";
import type { VolumeCondition } from "../backend/backend.js";

type StatsResponse = MessageInitShape<typeof NodeGetVolumeStatsResponseSchema>;

/**
 * Usage of a staged or published volume: bytes and inodes from statfs for a
 * filesystem, the device size for a block volume. With the volume-condition
 * alpha feature, a volume that is known here but unusable at the path
 * (missing, broken, read-only although published read-write, device gone)
 * is reported abnormal with a message instead of an error.
 */
export async function volumeStats(env: NodeEnv, req: NodeGetVolumeStatsRequest, signal: AbortSignal): Promise<StatsResponse> {
  const volumeId = requireVolumeId(req.volumeId);
  if (req.volumePath === "") throw InvalidArgument("volume_path is required");
  checkPathSize(req.volumePath, "volume_path");
  const stagingPath =
    req.stagingTargetPath === "" ? undefined : await canonicalPath(checkedPath(req.stagingTargetPath, "staging_target_path"));
  if (!isAbsolute(req.volumePath)) throw NotFound("volume %s is not staged or published at %s", volumeId, req.volumePath);

  const volumePath = await canonicalPath(checkedPath(req.volumePath, "volume_path"));
  const entries = await readMountInfo();
  const found = await inspectVolumePath(volumePath, volumeId, entries);
  const abnormal = (message: string): StatsResponse => ({ usage: [], volumeCondition: { abnormal: true, message } });

  if (found.kind === "corrupt") {
    if (env.volumeCondition && found.mounted) return abnormal(`the mount at ${volumePath} is broken: ${found.message}`);
    throw Internal("cannot read the volume at %s: %s", volumePath, found.message);
  }
  if (found.kind !== "filesystem" && found.kind !== "block") {
    // Known to be staged here but absent from the path: abnormal rather than unknown.
    if (
      env.volumeCondition &&
      stagingPath !== undefined &&
      stagingPath !== volumePath &&
      (await stagedAt(stagingPath, volumeId, entries)) !== undefined
    ) {
      return abnormal(
        `volume is staged at ${stagingPath} but ${volumePath} ${found.kind === "missing" ? "does not exist" : "has nothing mounted"}`,
      );
    }
    throw NotFound("volume %s is not staged or published at %s", volumeId, volumePath);
  }
  if (found.devicePath === undefined) {
    // No block device behind the mount: either it vanished (detached while in use) or it never was a volume (tmpfs, ...).
    const vanished = found.kind === "block" || found.entry.source.startsWith("/dev/");
    if (vanished && env.volumeCondition)
      return abnormal(
        `the block device behind ${volumePath} (${found.kind === "block" ? found.device : found.entry.source}) no longer exists`,
      );
    throw NotFound(vanished ? "the block device behind %s no longer exists" : "%s is not a volume mount", volumePath);
  }
  await requireVolumeDevice(env, volumeId, volumePath, found.device, stagingPath, entries, signal);

  if (found.kind === "block") {
    const size = BigInt(await blockDeviceSize(found.devicePath));
    return {
      usage: [{ unit: VolumeUsage_Unit.BYTES, total: size }],
      volumeCondition: env.volumeCondition
        ? await withStorageCondition(env, volumeId, { abnormal: false, message: `block device ${found.devicePath} is attached` }, signal)
        : undefined,
    };
  }

  let usage: FilesystemUsage;
  try {
    usage = await filesystemUsage(volumePath);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (env.volumeCondition) return abnormal(`statfs on ${volumePath} failed: ${message}`);
    throw Internal("statfs on %s failed: %s", volumePath, message);
  }
  return {
    usage: [
      { unit: VolumeUsage_Unit.BYTES, total: usage.bytes.total, used: usage.bytes.used, available: usage.bytes.available },
      { unit: VolumeUsage_Unit.INODES, total: usage.inodes.total, used: usage.inodes.used, available: usage.inodes.available },
    ],
    volumeCondition: env.volumeCondition ? await withStorageCondition(env, volumeId, await filesystemCondition(found), signal) : undefined,
  };
}

/** The backend's view of the volume's storage wins when it is abnormal (e.g. an image deleted under a loop device that still serves it). */
async function withStorageCondition(
  env: NodeEnv,
  volumeId: string,
  condition: VolumeCondition,
  signal: AbortSignal,
): Promise<VolumeCondition> {
  if (condition.abnormal || env.backend.storageCondition === undefined) return condition;
  const storage = await env.backend.storageCondition(volumeId, signal);
  return storage?.abnormal ? storage : condition;
}

async function filesystemCondition(found: MountedFilesystem): Promise<VolumeCondition> {
  if ((await devicePathOf(found.device)) === undefined) {
    return { abnormal: true, message: `the block device of the filesystem (${found.device}) no longer exists` };
  }
  if (!isReadOnlyMount(found.entry) && isReadOnlyFilesystem(found.entry)) {
    return {
      abnormal: true,
      message: `the ${found.entry.fsType} filesystem on ${found.entry.source} has been remounted read-only (likely after I/O or filesystem errors) although it is published read-write`,
    };
  }
  return {
    abnormal: false,
    message: `${found.entry.fsType} filesystem on ${found.entry.source} is mounted ${isReadOnlyMount(found.entry) ? "read-only" : "read-write"}`,
  };
}
