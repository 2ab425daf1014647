import { mkdir, rm, rmdir, unlink, writeFile } from "node:fs/promises";
import type { Logger } from "../log/logger.js";
import { AlreadyExists, FailedPrecondition, Internal, InvalidArgument } from "../errors.js";
import {
  VolumeCapability_AccessMode_Mode as Mode,
  type NodePublishVolumeRequest,
  type NodeUnpublishVolumeRequest,
} from "../gen/csi/v1/csi_pb.js";
import {
  VISIBLE_MOUNT_FLAGS,
  bindMount,
  canonicalPath,
  inspectMountPoint,
  inspectPath,
  isPathWithin,
  isReadOnlyMount,
  mountsOfDevice,
  perMountFlags,
  readMountInfo,
  unmountAll,
  type MountEntry,
  type MountPointState,
} from "../mounter/index.js";
import { checkedPath, requirePath, requireVolumeId, type NodeCapability, checkVolumeUse } from "./node-request.js";
import {
  foreignMountAt,
  notThisVolume,
  requirePropagation,
  stagedAt,
  volumeDeviceNumbers,
  type NodeEnv,
  type Staged,
} from "./node-volume.js";

interface Publication {
  readonly volumeId: string;
  readonly stagingPath: string;
  readonly targetPath: string;
  readonly capability: NodeCapability;
  readonly readOnly: boolean;
}

export async function publishVolume(env: NodeEnv, req: NodePublishVolumeRequest, signal: AbortSignal, log: Logger): Promise<void> {
  const {
    volumeId,
    path: requestedTarget,
    capability,
  } = checkVolumeUse(req, { field: "target_path", value: req.targetPath }, env.singleNodeMultiWriter);
  if (req.stagingTargetPath === "") {
    throw FailedPrecondition(
      "staging_target_path is required: this plugin stages volumes (STAGE_UNSTAGE_VOLUME), so NodeStageVolume must succeed first",
    );
  }
  const requestedStaging = checkedPath(req.stagingTargetPath, "staging_target_path");
  await env.inflight.run([`volume:${volumeId}`, `path:${requestedTarget}`], "NodePublishVolume", async () => {
    const pub: Publication = {
      volumeId,
      stagingPath: await canonicalPath(requestedStaging),
      targetPath: await canonicalPath(requestedTarget),
      capability,
      readOnly: req.readonly || capability.readerOnly,
    };
    if (isPathWithin(pub.targetPath, pub.stagingPath) || isPathWithin(pub.stagingPath, pub.targetPath)) {
      throw InvalidArgument("target_path %s and staging_target_path %s must not contain each other", pub.targetPath, pub.stagingPath);
    }
    let entries = await readMountInfo();
    requirePropagation(env, pub.targetPath, entries);
    const staged = await requireStaged(env, pub, entries, signal);

    let target = await inspectMountPoint(pub.targetPath, entries);
    if (target.kind === "corrupt") {
      const foreign = await foreignMountAt(pub.targetPath, target, entries, await volumeDeviceNumbers(env, volumeId, signal));
      if (foreign !== undefined) throw notThisVolume("target_path", pub.targetPath, foreign, volumeId);
      log.warn(
        { volumeId, targetPath: pub.targetPath, error: target.message },
        "target path holds a broken mount; removing it before publishing",
      );
      await unmountAll(pub.targetPath, { signal });
      entries = await readMountInfo();
      target = await inspectMountPoint(pub.targetPath, entries);
    }
    if (target.kind === "filesystem" || target.kind === "block") {
      checkSamePublication(pub, staged, target);
      return;
    }
    requireSingleWriter(pub, staged, entries);

    const created = await createTarget(pub, target);
    try {
      if (staged.kind === "mount") {
        const flags = perMountFlags(capability.mountFlags).filter((f) => f !== "ro" && f !== "rw");
        await bindMount(pub.stagingPath, pub.targetPath, pub.readOnly ? [...flags, "ro"] : flags, { signal });
      } else {
        const device = staged.mount.devicePath;
        if (device === undefined) throw FailedPrecondition("the device staged at %s for volume %s no longer exists", staged.file, volumeId);
        await bindMount(device, pub.targetPath, pub.readOnly ? ["ro"] : [], { signal });
      }
    } catch (err) {
      if (created) await rm(pub.targetPath, { recursive: false, force: true }).catch(() => undefined);
      throw err;
    }
    log.info({ volumeId, targetPath: pub.targetPath, readOnly: pub.readOnly, accessType: capability.accessType }, "volume published");
  });
}

/** What NodeStageVolume left for this volume, matching the requested access type; FAILED_PRECONDITION otherwise. */
async function requireStaged(env: NodeEnv, pub: Publication, entries: readonly MountEntry[], signal: AbortSignal): Promise<Staged> {
  const { volumeId, stagingPath, capability } = pub;
  const staged = await stagedAt(stagingPath, volumeId, entries);
  if (staged === undefined)
    throw FailedPrecondition("volume %s is not staged at %s; NodeStageVolume must succeed first", volumeId, stagingPath);
  if (staged.kind === "mount" && capability.accessType === "block") {
    throw FailedPrecondition("volume %s is staged at %s as a filesystem and cannot be published for block access", volumeId, stagingPath);
  }
  if (staged.kind === "block" && capability.accessType === "mount") {
    throw FailedPrecondition("volume %s is staged at %s for block access and cannot be published as a filesystem", volumeId, stagingPath);
  }
  const numbers = await volumeDeviceNumbers(env, volumeId, signal);
  if (numbers !== undefined && !numbers.has(staged.mount.device)) {
    throw FailedPrecondition(
      "staging_target_path %s holds device %s, which is not a device of volume %s",
      stagingPath,
      staged.mount.device,
      volumeId,
    );
  }
  if (staged.kind === "mount" && capability.fsType !== "" && capability.fsType !== staged.mount.entry.fsType) {
    throw FailedPrecondition(
      "volume %s is staged with a %s filesystem, but the capability asks for %s",
      volumeId,
      staged.mount.entry.fsType,
      capability.fsType,
    );
  }
  return staged;
}

/** A target that is already mounted: OK when it is this very publication, ALREADY_EXISTS otherwise. */
function checkSamePublication(pub: Publication, staged: Staged, target: MountPointState & { kind: "filesystem" | "block" }): void {
  const { volumeId, targetPath, capability } = pub;
  const wantKind = staged.kind === "mount" ? "filesystem" : "block";
  if (
    target.kind !== wantKind ||
    target.device !== staged.mount.device ||
    (target.kind === "filesystem" && target.entry.root !== staged.mount.entry.root)
  ) {
    throw AlreadyExists(
      "target_path %s already has something else mounted (%s %s); it is not volume %s published %s",
      targetPath,
      target.entry.fsType,
      target.entry.source,
      volumeId,
      capability.accessType === "block" ? "for block access" : "as a filesystem",
    );
  }
  if (isReadOnlyMount(target.entry) !== pub.readOnly) {
    throw AlreadyExists(
      "volume %s is already published at %s %s; the request asks for %s",
      volumeId,
      targetPath,
      isReadOnlyMount(target.entry) ? "read-only" : "read-write",
      pub.readOnly ? "read-only" : "read-write",
    );
  }
  const missing = capability.mountFlags.filter((f) => VISIBLE_MOUNT_FLAGS.has(f) && !target.entry.options.includes(f));
  if (missing.length > 0)
    throw AlreadyExists(
      "volume %s is already published at %s without the requested mount flags %s",
      volumeId,
      targetPath,
      missing.join(","),
    );
}

/** SINGLE_NODE_SINGLE_WRITER: one publication at a time (the spec's table for that mode); other modes may be published to several targets. */
function requireSingleWriter(pub: Publication, staged: Staged, entries: readonly MountEntry[]): void {
  if (pub.capability.accessMode !== Mode.SINGLE_NODE_SINGLE_WRITER) return;
  const exclude = staged.kind === "mount" ? pub.stagingPath : staged.file;
  const others = mountsOfDevice(entries, staged.mount.device, staged.mount.devicePath ?? "").filter(
    (m) => !isPathWithin(m.mountPoint, exclude) && m.mountPoint !== pub.targetPath,
  );
  if (others.length > 0) {
    throw FailedPrecondition(
      "volume %s has access mode SINGLE_NODE_SINGLE_WRITER and is already published at %s",
      pub.volumeId,
      others.map((m) => m.mountPoint).join(", "),
    );
  }
}

/** Create the target (a directory for a filesystem, a file for a device) if absent; true when this call created it. */
async function createTarget(pub: Publication, target: MountPointState): Promise<boolean> {
  const block = pub.capability.accessType === "block";
  if (target.kind === (block ? "file" : "directory")) return false;
  if (target.kind !== "missing")
    throw InvalidArgument("target_path %s exists and is not a %s", pub.targetPath, block ? "file" : "directory");
  try {
    if (block) await writeFile(pub.targetPath, "", { flag: "wx", mode: 0o600 });
    else await mkdir(pub.targetPath, { mode: 0o750 });
  } catch (err) {
    if (err instanceof Error && "code" in err && err.code === "ENOENT")
      throw InvalidArgument("the parent directory of target_path %s does not exist", pub.targetPath);
    throw err;
  }
  return true;
}

/**
 * Undo NodePublishVolume at target_path: a path that holds nothing is done
 * (idempotency, including a volume deleted since), and a path that is not
 * mounted is removed if empty. A mount is only removed when it is the
 * volume's (foreignMountAt): a volume_id that is wrong or made up, or a
 * target_path that holds another mount, must not unmount what someone else
 * uses (FAILED_PRECONDITION, see notThisVolume).
 */
export async function unpublishVolume(env: NodeEnv, req: NodeUnpublishVolumeRequest, signal: AbortSignal, log: Logger): Promise<void> {
  const volumeId = requireVolumeId(req.volumeId);
  const requestedTarget = requirePath(req.targetPath, "target_path");
  await env.inflight.run([`volume:${volumeId}`, `path:${requestedTarget}`], "NodeUnpublishVolume", async () => {
    const targetPath = await canonicalPath(requestedTarget);
    const entries = await readMountInfo();
    const target = await inspectMountPoint(targetPath, entries);
    if (target.kind === "missing") return;
    if (target.kind === "filesystem" || target.kind === "block" || (target.kind === "corrupt" && target.mounted)) {
      const foreign = await foreignMountAt(targetPath, target, entries, await volumeDeviceNumbers(env, volumeId, signal));
      if (foreign !== undefined) {
        throw notThisVolume("target_path", targetPath, foreign, volumeId);
      }
      const { lazy } = await unmountAll(targetPath, { signal });
      if (lazy) log.warn({ volumeId, targetPath }, "target mount was busy or broken and was detached lazily");
    } else if (target.kind === "corrupt") {
      throw Internal("cannot inspect target_path %s (%s) and it is not a mount point", targetPath, target.message);
    }
    await removeTarget(targetPath);
    log.info({ volumeId, targetPath }, "volume unpublished");
  });
}

/** Delete the directory or file that NodePublishVolume created; never anything holding data. */
async function removeTarget(targetPath: string): Promise<void> {
  const left = await inspectPath(targetPath);
  try {
    switch (left.kind) {
      case "missing":
        return;
      case "directory":
        await rmdir(targetPath);
        return;
      case "file":
        if (left.size > 0) throw FailedPrecondition("target_path %s is a file with data after unmounting; it is left in place", targetPath);
        await unlink(targetPath);
        return;
      case "other":
        await unlink(targetPath);
        return;
      default:
        throw Internal(
          "cannot inspect target_path %s after unmounting (%s)",
          targetPath,
          left.kind === "corrupt" ? left.message : left.kind,
        );
    }
  } catch (err) {
    if (err instanceof Error && "code" in err && err.code === "ENOTEMPTY") {
      throw FailedPrecondition("target_path %s is not empty after unmounting; it is left in place so that no data is deleted", targetPath);
    }
    if (err instanceof Error && "code" in err && err.code === "ENOENT") return;
    throw err;
  }
}
