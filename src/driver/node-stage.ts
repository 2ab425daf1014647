import { clearFormatting, formatWasInterrupted, markFormatting } from "./node-format-marker.js";
import { mkdir, realpath, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../log/logger.js";
import { AlreadyExists, FailedPrecondition, Internal, InvalidArgument } from "../errors.js";
import type { NodeStageVolumeRequest, NodeUnstageVolumeRequest } from "../gen/csi/v1/csi_pb.js";
import {
  DEFAULT_FILESYSTEM,
  NotABlockDeviceError,
  VISIBLE_MOUNT_FLAGS,
  XFS_MIN_BYTES,
  bindMount,
  blockDeviceNumber,
  blockDeviceSize,
  canonicalPath,
  devicePathOf,
  growFilesystem,
  growUnmountedExtFilesystem,
  inspectMountPoint,
  inspectPath,
  isFormattable,
  isPathWithin,
  isReadOnlyMount,
  makeFilesystem,
  mountFilesystem,
  mountsOfDevice,
  probeDevice,
  readMountInfo,
  unmountAll,
  unmountTop,
  type DeviceNumber,
  type MountEntry,
  type MountedFilesystem,
} from "../mounter/index.js";
import { formattingForbidden, requirePath, requireVolumeId, type NodeCapability, checkVolumeUse } from "./node-request.js";
import {
  blockStagingFile,
  filesystemNeedsGrowth,
  foreignMountAt,
  notThisVolume,
  requireFilesystemTools,
  requirePropagation,
  volumeDeviceNumbers,
  type NodeEnv,
} from "./node-volume.js";

/** Bound on broken mounts removed one by one from a staging path. */
const MAX_BROKEN_MOUNTS = 8;

interface StageRequest {
  readonly volumeId: string;
  readonly stagingPath: string;
  readonly capability: NodeCapability;
  readonly noFormatKey: string | undefined;
  readonly request: NodeStageVolumeRequest;
}

/** The device being staged: the path the backend gave and the kernel's name and number for it. */
interface StageDevice {
  readonly path: string;
  readonly number: DeviceNumber;
}

export async function stageVolume(env: NodeEnv, req: NodeStageVolumeRequest, signal: AbortSignal, log: Logger): Promise<void> {
  const {
    volumeId,
    path: requestedPath,
    capability,
  } = checkVolumeUse(req, { field: "staging_target_path", value: req.stagingTargetPath }, env.singleNodeMultiWriter);
  const noFormatKey = formattingForbidden(req.volumeContext);
  await env.inflight.run([`volume:${volumeId}`, `path:${requestedPath}`], "NodeStageVolume", async () => {
    const stagingPath = await canonicalPath(requestedPath);
    requirePropagation(env, stagingPath, await readMountInfo());
    await checkStagingPath(stagingPath);
    // The volume's device is found (the local backend attaches it) before anything at the path is created or
    // changed: a volume that does not exist is NOT_FOUND and leaves the path as it was.
    const attached = await env.backend.attachDevice(volumeId, req.publishContext, req.volumeContext, signal);
    let device: StageDevice | undefined;
    try {
      device = await resolveDevice(volumeId, attached);
      await createStagingDirectory(stagingPath);
      const stage: StageRequest = { volumeId, stagingPath, capability, noFormatKey, request: req };
      if (await alreadyStaged(env, stage, device, signal, log)) return;
      if (capability.accessType === "block") await stageBlock(stage, device, signal);
      else await stageFilesystem(stage, device, signal, log);
    } catch (err) {
      await undoAttach(env, volumeId, device, signal, log);
      throw err;
    }
  });
}

/** Before the volume is looked up, and without changing anything: the staging path is a directory, or missing in a directory. */
async function checkStagingPath(path: string): Promise<void> {
  const st = await inspectPath(path);
  if (st.kind === "directory" || st.kind === "corrupt") return;
  if (st.kind !== "missing") throw InvalidArgument("staging_target_path %s exists and is not a directory", path);
  if ((await inspectPath(dirname(path))).kind !== "directory")
    throw InvalidArgument("staging_target_path %s does not exist and neither does its parent directory", path);
}

/** The staging directory is created when missing, as a CO may leave that to the plugin. */
async function createStagingDirectory(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: 0o750 });
  } catch (err) {
    if (err instanceof Error && "code" in err && err.code === "EEXIST") return;
    if (err instanceof Error && "code" in err && err.code === "ENOENT") {
      throw InvalidArgument("staging_target_path %s does not exist and neither does its parent directory", path);
    }
    throw err;
  }
}

async function resolveDevice(volumeId: string, attached: string): Promise<StageDevice> {
  let number: DeviceNumber;
  try {
    number = await blockDeviceNumber(attached);
  } catch (err) {
    if (err instanceof NotABlockDeviceError)
      throw FailedPrecondition("the device of volume %s, %s, is not a block device", volumeId, attached);
    throw err;
  }
  // Mount and compare by the kernel's name (/dev/sda, not a by-id link), as mountinfo reports it.
  const path = (await devicePathOf(number)) ?? (await realpath(attached));
  return { path, number };
}

/**
 * Whether the volume is staged at the path already. Compatible -> true (after
 * finishing a growth an interrupted stage may have left undone); something
 * else staged there -> ALREADY_EXISTS; nothing -> false. A broken mount is
 * cleared so staging can start over.
 */
async function alreadyStaged(env: NodeEnv, stage: StageRequest, device: StageDevice, signal: AbortSignal, log: Logger): Promise<boolean> {
  const { volumeId, stagingPath, capability } = stage;
  let entries = await readMountInfo();
  let current = await inspectMountPoint(stagingPath, entries);
  // Broken mounts stacked on the staging path are peeled one by one; what is beneath is judged as usual.
  for (let i = 0; i < MAX_BROKEN_MOUNTS && current.kind === "corrupt" && current.mounted; i++) {
    log.warn({ volumeId, stagingPath, error: current.message }, "staging path holds a broken mount; detaching it");
    await unmountTop(stagingPath, { signal });
    entries = await readMountInfo();
    current = await inspectMountPoint(stagingPath, entries);
  }
  if (current.kind === "corrupt") throw Internal("cannot inspect staging_target_path %s (%s)", stagingPath, current.message);
  if (current.kind === "block")
    throw AlreadyExists("staging_target_path %s has a device node bound onto it, not a staged volume", stagingPath);
  if (current.kind === "filesystem") {
    if (!(await isVolumeDevice(env, stage, device, current.device, signal))) {
      throw AlreadyExists(
        "staging_target_path %s already has another device (%s, %s) mounted",
        stagingPath,
        current.devicePath ?? current.entry.source,
        current.device,
      );
    }
    if (capability.accessType === "block")
      throw AlreadyExists("volume %s is staged at %s as a mounted filesystem, not for block access", volumeId, stagingPath);
    checkCompatibleMount(stage, current);
    if (current.devicePath !== undefined && !isReadOnlyMount(current.entry)) {
      await growOnlineIfSmaller(volumeId, current.devicePath, current.entry.fsType, stagingPath, signal, log);
    }
    return true;
  }
  const file = blockStagingFile(stagingPath, volumeId);
  const blockFile = await inspectMountPoint(file, entries);
  if (blockFile.kind === "corrupt" && blockFile.mounted) {
    await unmountAll(file, { signal });
    return false;
  }
  if (blockFile.kind === "block") {
    if (!(await isVolumeDevice(env, stage, device, blockFile.device, signal)))
      throw AlreadyExists("%s already has another device (%s) bound onto it", file, blockFile.device);
    if (capability.accessType === "mount")
      throw AlreadyExists("volume %s is staged at %s for block access, not as a filesystem", volumeId, stagingPath);
    return true;
  }
  return false;
}

/** ALREADY_EXISTS unless the staged filesystem matches what the capability asks for. */
function checkCompatibleMount(stage: StageRequest, current: MountedFilesystem): void {
  const { volumeId, stagingPath, capability } = stage;
  const fsType = current.entry.fsType;
  if (capability.fsType !== "" && capability.fsType !== fsType) {
    throw AlreadyExists(
      "volume %s is staged at %s with a %s filesystem, but %s was requested",
      volumeId,
      stagingPath,
      fsType,
      capability.fsType,
    );
  }
  const wantReadOnly = capability.readerOnly || capability.mountFlags.includes("ro");
  if (wantReadOnly !== isReadOnlyMount(current.entry)) {
    throw AlreadyExists(
      "volume %s is staged at %s %s, but the request asks for %s",
      volumeId,
      stagingPath,
      isReadOnlyMount(current.entry) ? "read-only" : "read-write",
      wantReadOnly ? "read-only" : "read-write",
    );
  }
  const missing = capability.mountFlags.filter((f) => VISIBLE_MOUNT_FLAGS.has(f) && !current.entry.options.includes(f));
  if (missing.length > 0)
    throw AlreadyExists("volume %s is staged at %s without the requested mount flags %s", volumeId, stagingPath, missing.join(","));
}

/** Whether a mounted device number is the volume's: the device found for this request, or another one the backend lists for the volume. */
async function isVolumeDevice(
  env: NodeEnv,
  stage: StageRequest,
  found: StageDevice,
  device: DeviceNumber,
  signal: AbortSignal,
): Promise<boolean> {
  if (device === found.number) return true;
  return (await volumeDeviceNumbers(env, stage.volumeId, signal))?.has(device) ?? false;
}

/** Block access: no filesystem; the device is bind-mounted onto a file in the staging directory, which records what is staged. */
async function stageBlock(stage: StageRequest, device: StageDevice, signal: AbortSignal): Promise<void> {
  const file = blockStagingFile(stage.stagingPath, stage.volumeId);
  const st = await inspectPath(file);
  if (st.kind === "missing") await writeFile(file, "", { flag: "wx", mode: 0o600 });
  else if (st.kind !== "file")
    throw AlreadyExists("%s exists and is not a file; cannot stage volume %s for block access there", file, stage.volumeId);
  await bindMount(device.path, file, [], { signal });
}

/**
 * Mount access: format only a blank device, never anything that holds data,
 * mount it, and grow the filesystem if the device is larger (a restore or a
 * clone into a bigger volume, or an expansion while unstaged).
 */
async function stageFilesystem(stage: StageRequest, device: StageDevice, signal: AbortSignal, log: Logger): Promise<void> {
  const { volumeId, stagingPath, capability, noFormatKey } = stage;
  // A format this plugin started and never finished left the device as it is:
  // it held nothing before, so it is formatted again rather than refused.
  const resumeFormat = noFormatKey === undefined && (await formatWasInterrupted(stagingPath, volumeId));
  if (resumeFormat) log.warn({ volumeId, device: device.path }, "an earlier format of this volume was interrupted; formatting it again");
  const content = resumeFormat ? ({ kind: "blank" } as const) : await probeDevice(device.path, signal);
  let fsType: string;
  let formatted = false;
  switch (content.kind) {
    case "filesystem":
      if (capability.fsType !== "" && capability.fsType !== content.fsType) {
        throw FailedPrecondition(
          "volume %s already holds a %s filesystem but %s was requested; it is never reformatted (request fs_type %s, or none, to use it)",
          volumeId,
          content.fsType,
          capability.fsType,
          content.fsType,
        );
      }
      fsType = content.fsType;
      break;
    case "blank": {
      if (noFormatKey !== undefined) {
        throw FailedPrecondition(
          "volume %s holds no filesystem and the volume context key %s forbids formatting it; create a filesystem on it or remove the key",
          volumeId,
          noFormatKey,
        );
      }
      fsType = capability.fsType || DEFAULT_FILESYSTEM;
      if (!isFormattable(fsType))
        throw FailedPrecondition(
          "volume %s is blank and this plugin cannot create %s filesystems (supported: ext4, ext3, xfs)",
          volumeId,
          fsType,
        );
      const size = await blockDeviceSize(device.path);
      if (fsType === "xfs" && size < XFS_MIN_BYTES) {
        throw FailedPrecondition(
          "volume %s has %d bytes; xfs needs at least %d (300 MiB): use ext4 or a bigger volume",
          volumeId,
          size,
          XFS_MIN_BYTES,
        );
      }
      await requireFilesystemTools(fsType);
      log.info({ volumeId, device: device.path, fsType }, "formatting blank volume");
      await markFormatting(stagingPath, volumeId);
      await makeFilesystem(device.path, fsType, { overwriteInterrupted: resumeFormat, progress: { log, fields: { volumeId } } });
      await clearFormatting(stagingPath);
      formatted = true;
      break;
    }
    default:
      throw FailedPrecondition(
        "volume %s (device %s) holds %s; refusing to format or mount it. Use it as a block volume, or wipe it (e.g. wipefs -a) if its content is not needed",
        volumeId,
        device.path,
        content.description,
      );
  }

  await requireFilesystemTools(fsType);
  const readOnly = capability.readerOnly || capability.mountFlags.includes("ro");
  const mountedElsewhere = mountsOfDevice(await readMountInfo(), device.number, device.path).length > 0;
  // ext grows offline before mounting: the online resize ioctl needs CAP_SYS_RESOURCE, offline growth does not.
  if (
    !formatted &&
    !readOnly &&
    !mountedElsewhere &&
    fsType.startsWith("ext") &&
    (await filesystemNeedsGrowth(device.path, fsType, undefined, signal))
  ) {
    log.info({ volumeId, device: device.path, fsType }, "growing the filesystem to the size of its device before mounting");
    await growUnmountedExtFilesystem(device.path);
  }

  const options = [...capability.mountFlags];
  if (fsType === "xfs" && !options.includes("nouuid")) options.push("nouuid"); // a clone has its source's UUID
  if (capability.readerOnly && !options.includes("ro")) options.push("ro");
  await mountFilesystem(device.path, stagingPath, fsType, options, { signal });
  log.info({ volumeId, device: device.path, fsType, stagingPath }, "volume staged");

  if (!formatted && !readOnly) await growOnlineIfSmaller(volumeId, device.path, fsType, stagingPath, signal, log);
}

/**
 * Grow a staged filesystem that is smaller than its device (xfs only grows
 * online). Best effort: the volume is usable either way, and a failure here
 * (e.g. no CAP_SYS_RESOURCE for ext4) must not keep the pod from starting;
 * NodeExpandVolume reports it when an expansion is actually requested.
 */
async function growOnlineIfSmaller(
  volumeId: string,
  device: string,
  fsType: string,
  mountPoint: string,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  try {
    if (!(await filesystemNeedsGrowth(device, fsType, mountPoint, signal))) return;
    log.info({ volumeId, device, fsType }, "growing the filesystem to the size of its device");
    await growFilesystem(device, fsType, mountPoint);
  } catch (err) {
    signal.throwIfAborted();
    log.warn(
      { volumeId, device, fsType, error: err instanceof Error ? err.message : String(err) },
      "could not grow the staged filesystem to its device; it stays usable at its current size",
    );
  }
}

/** After a failed stage, give back a device the backend attached for it, unless something mounts it. */
async function undoAttach(
  env: NodeEnv,
  volumeId: string,
  device: StageDevice | undefined,
  signal: AbortSignal,
  log: Logger,
): Promise<void> {
  try {
    if (device !== undefined && mountsOfDevice(await readMountInfo(), device.number, device.path).length > 0) return;
    await env.backend.detachDevice(volumeId, device?.path, signal);
  } catch (err) {
    log.warn({ volumeId, error: err instanceof Error ? err.message : String(err) }, "could not detach the device after a failed stage");
  }
}

/**
 * Undo NodeStageVolume at staging_target_path. A path that holds nothing of
 * the volume is done (idempotency, including a volume deleted since). A mount
 * there is only removed when it is the volume's (foreignMountAt); anything
 * else is FAILED_PRECONDITION and left untouched (see notThisVolume).
 */
export async function unstageVolume(env: NodeEnv, req: NodeUnstageVolumeRequest, signal: AbortSignal, log: Logger): Promise<void> {
  const volumeId = requireVolumeId(req.volumeId);
  const requestedPath = requirePath(req.stagingTargetPath, "staging_target_path");
  await env.inflight.run([`volume:${volumeId}`, `path:${requestedPath}`], "NodeUnstageVolume", async () => {
    const stagingPath = await canonicalPath(requestedPath);
    const devices = await volumeDeviceNumbers(env, volumeId, signal);
    let entries = await readMountInfo();
    let device: StageDevice | undefined;

    let dir = await inspectMountPoint(stagingPath, entries);
    const foreign = await foreignMountAt(stagingPath, dir, entries, devices);
    if (foreign !== undefined) throw notThisVolume("staging_target_path", stagingPath, foreign, volumeId);
    // A broken mount stacked on the staging path goes first (lazily if need be); what is beneath is then unstaged as usual.
    for (let i = 0; i < MAX_BROKEN_MOUNTS && dir.kind === "corrupt" && dir.mounted; i++) {
      log.warn({ volumeId, stagingPath, error: dir.message }, "staging path holds a broken mount; detaching it");
      await unmountTop(stagingPath, { signal });
      entries = await readMountInfo();
      dir = await inspectMountPoint(stagingPath, entries);
    }
    if (dir.kind === "filesystem" && dir.devicePath !== undefined) {
      requireUnpublished(volumeId, stagingPath, dir.device, dir.devicePath, entries);
      device = { path: dir.devicePath, number: dir.device };
      const { lazy } = await unmountAll(stagingPath, { signal });
      if (lazy) log.warn({ volumeId, stagingPath }, "staging mount was busy or broken and was detached lazily");
    } else if (dir.kind === "corrupt") {
      throw Internal("cannot inspect staging_target_path %s (%s)", stagingPath, dir.message);
    } else if (dir.kind === "filesystem") {
      // The volume's filesystem whose device has gone (foreignMountAt accepted it): nothing can use it any more.
      log.warn({ volumeId, stagingPath, source: dir.entry.source }, "the staged device no longer exists; unmounting what is left of it");
      await unmountAll(stagingPath, { signal });
    } else if (dir.kind === "block") {
      // Not something NodeStageVolume creates (it binds devices onto a file inside the directory): leave it alone.
      log.warn({ volumeId, stagingPath, source: dir.entry.source }, "staging path has a device node bound onto it; leaving it");
    } else if (dir.kind === "directory") {
      device = await unstageBlockFile(volumeId, stagingPath, entries, devices, signal);
    }

    if (device !== undefined) {
      const users = mountsOfDevice(await readMountInfo(), device.number, device.path);
      if (users.length > 0) {
        throw FailedPrecondition(
          "volume %s is unstaged but its device %s is still mounted at %s; not detaching it",
          volumeId,
          device.path,
          users.map((m) => m.mountPoint).join(", "),
        );
      }
    }
    await env.backend.detachDevice(volumeId, device?.path, signal);
    log.info({ volumeId, stagingPath }, "volume unstaged");
  });
}

/** Undo a block staging: unmount the device from its file in the staging directory and remove the file. */
async function unstageBlockFile(
  volumeId: string,
  stagingPath: string,
  entries: readonly MountEntry[],
  devices: ReadonlySet<DeviceNumber> | undefined,
  signal: AbortSignal,
): Promise<StageDevice | undefined> {
  const file = blockStagingFile(stagingPath, volumeId);
  const blockFile = await inspectMountPoint(file, entries);
  const foreign = await foreignMountAt(file, blockFile, entries, devices);
  if (foreign !== undefined) throw notThisVolume("the block staging file", file, foreign, volumeId);
  let device: StageDevice | undefined;
  if (blockFile.kind === "block" && blockFile.devicePath !== undefined) {
    requireUnpublished(volumeId, file, blockFile.device, blockFile.devicePath, entries);
    device = { path: blockFile.devicePath, number: blockFile.device };
  }
  if (blockFile.kind === "block" || (blockFile.kind === "corrupt" && blockFile.mounted)) await unmountAll(file, { signal });
  const left = await inspectPath(file);
  if (left.kind === "file" && left.size === 0) await rm(file, { force: true });
  return device;
}

/**
 * FAILED_PRECONDITION while the volume's device is mounted anywhere but the
 * staging path: the CO must unpublish every target first, and unmounting the
 * staging mount under a publication would let the device be detached in use.
 */
function requireUnpublished(
  volumeId: string,
  stagingPath: string,
  device: DeviceNumber,
  devicePath: string,
  entries: readonly MountEntry[],
): void {
  const others = mountsOfDevice(entries, device, devicePath).filter((m) => !isPathWithin(m.mountPoint, stagingPath));
  if (others.length > 0) {
    throw FailedPrecondition(
      "volume %s is still published at %s; NodeUnpublishVolume must succeed for every target before NodeUnstageVolume",
      volumeId,
      others.map((m) => m.mountPoint).join(", "),
    );
  }
}
