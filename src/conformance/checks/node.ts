import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { VolumeUsage_Unit as Unit, type NodeGetVolumeStatsResponse } from "../../gen/csi/v1/csi_pb.js";
import { verify, type Check } from "../check.js";
import { AccessMode, type AccessType, type CheckRun } from "../context.js";
import { describeOutcome, expectCode, expectOk, outcome } from "../expect.js";
import { ControllerCap, NodeCap, needs, PluginService } from "../profile.js";
import { identifierProblem, NODE_ID_LIMIT_BYTES, topologyPrefixProblem, topologyProblems } from "../spec-rules.js";
import { unknownVolumeId } from "./shared.js";

const needNode = needs.node();
const needStage = needs.node(NodeCap.STAGE_UNSTAGE_VOLUME);
const needStats = needs.node(NodeCap.GET_VOLUME_STATS);
const needNodeExpand = needs.node(NodeCap.EXPAND_VOLUME);
const needNodeAndCreate = needs.all(needs.node(), needs.controller(ControllerCap.CREATE_DELETE_VOLUME));

/** What is wrong with a NodeGetVolumeStats answer for a volume of `capacity` bytes. */
export function statsProblems(run: CheckRun, stats: NodeGetVolumeStatsResponse, accessType: AccessType, capacity: bigint): string[] {
  const problems: string[] = [];
  if (stats.usage.length === 0) problems.push("usage is empty");
  const units = stats.usage.map((u) => u.unit);
  if (units.some((u) => u === Unit.UNKNOWN || Unit[u] === undefined))
    problems.push(`usage has an entry of unknown unit (${units.join(", ")})`);
  if (new Set(units).size !== units.length) problems.push(`usage repeats a unit (${units.map((u) => Unit[u] ?? u).join(", ")})`);
  for (const usage of stats.usage) {
    const unit = Unit[usage.unit] ?? String(usage.unit);
    if (usage.total < 0n || usage.used < 0n || usage.available < 0n)
      problems.push(`${unit}: negative value (total ${usage.total}, used ${usage.used}, available ${usage.available})`);
    if (usage.total === 0n) problems.push(`${unit}: total is 0 (REQUIRED)`);
    if (usage.used > usage.total) problems.push(`${unit}: used ${usage.used} exceeds total ${usage.total}`);
    if (usage.available > usage.total) problems.push(`${unit}: available ${usage.available} exceeds total ${usage.total}`);
  }
  const bytes = stats.usage.find((u) => u.unit === Unit.BYTES);
  if (bytes === undefined) problems.push("usage has no BYTES entry");
  else if (capacity > 0n) {
    if (bytes.total > capacity) problems.push(`BYTES total ${bytes.total} exceeds the volume's capacity ${capacity}`);
    // A filesystem spends some of the device on metadata; a block device is the whole volume.
    const floor = accessType === "block" ? capacity : (capacity * 7n) / 10n;
    if (bytes.total < floor) problems.push(`BYTES total ${bytes.total} is far below the volume's capacity ${capacity}`);
  }
  if (run.hasNodeCap(NodeCap.VOLUME_CONDITION)) {
    if (stats.volumeCondition === undefined || stats.volumeCondition.message === "")
      problems.push("volume_condition is missing or has no message although VOLUME_CONDITION is advertised");
    else if (stats.volumeCondition.abnormal) problems.push(`the volume is reported abnormal: ${stats.volumeCondition.message}`);
  }
  return problems;
}

/** A directory of this check that exists but holds no volume. */
async function plainDir(run: CheckRun, label: string): Promise<string> {
  const paths = await run.workPaths(label);
  const dir = join(paths.stagingPath, "..", "plain");
  await mkdir(dir, { recursive: true });
  return dir;
}

/**
 * A volume that no longer exists, with the contexts a CO may still hold for
 * it: created, controller-published and unpublished, then deleted (a plugin
 * with PUBLISH_UNPUBLISH_VOLUME needs the publish_context to even find a
 * volume on the node). Without CreateVolume, an id that never existed.
 */
async function deletedVolume(
  run: CheckRun,
): Promise<{ volumeId: string; publishContext: Record<string, string>; volumeContext: Record<string, string> }> {
  if (!run.hasControllerCap(ControllerCap.CREATE_DELETE_VOLUME))
    return { volumeId: unknownVolumeId(), publishContext: {}, volumeContext: {} };
  const volume = await run.createTestVolume("gone");
  let publishContext: Record<string, string> = {};
  if (run.hasControllerCap(ControllerCap.PUBLISH_UNPUBLISH_VOLUME)) {
    run.step("ControllerPublishVolume, then ControllerUnpublishVolume");
    publishContext = await run.controllerPublish(volume, run.mountCapability());
    await run.controllerUnpublish(volume.volumeId);
  }
  run.step("DeleteVolume");
  await run.deleteVolume(volume.volumeId);
  return { volumeId: volume.volumeId, publishContext, volumeContext: volume.volumeContext };
}

export const nodeInfoChecks: Check[] = [
  {
    id: "node-get-info.valid",
    group: "NodeGetInfo",
    title: "NodeGetInfo returns a node id, a non-negative volume limit and a valid topology, consistently",
    level: "MUST",
    rule: "node_id is REQUIRED (256 bytes max); max_volumes_per_node MUST NOT be negative; accessible_topology requires VOLUME_ACCESSIBILITY_CONSTRAINTS and follows the Topology rules",
    skipUnless: needNode,
    async run(run) {
      const first = await expectOk("NodeGetInfo", run.node.nodeGetInfo({}, run.call()));
      const id = identifierProblem("node_id", first.nodeId, NODE_ID_LIMIT_BYTES);
      verify(id === undefined, id ?? "");
      verify(first.maxVolumesPerNode >= 0n, `max_volumes_per_node ${first.maxVolumesPerNode} is negative`);
      const segments = first.accessibleTopology?.segments;
      if (segments !== undefined && Object.keys(segments).length > 0) {
        verify(
          run.profile.pluginServices.has(PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS),
          "accessible_topology is set but VOLUME_ACCESSIBILITY_CONSTRAINTS is not advertised",
        );
        const problems = [...topologyProblems(segments), topologyPrefixProblem([segments]) ?? ""].filter((p) => p !== "");
        verify(problems.length === 0, problems.join("; "));
      }
      for (let i = 2; i <= run.options.idempotentCount; i++) {
        const again = await expectOk("NodeGetInfo (repeated)", run.node.nodeGetInfo({}, run.call()));
        verify(again.nodeId === first.nodeId, `NodeGetInfo returned node id ${again.nodeId}, earlier ${first.nodeId}`);
      }
    },
  },
];

export const nodeStageChecks: Check[] = [
  {
    id: "node-stage.missing-volume-id",
    group: "NodeStageVolume",
    title: "NodeStageVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeStageVolumeRequest.volume_id is REQUIRED",
    skipUnless: needStage,
    async run(run) {
      const { stagingPath } = await run.workPaths();
      await expectCode(
        "NodeStageVolume without volume_id",
        run.node.nodeStageVolume({ stagingTargetPath: stagingPath, volumeCapability: run.mountCapability() }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-stage.missing-staging-path",
    group: "NodeStageVolume",
    title: "NodeStageVolume without a staging_target_path fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "staging_target_path is REQUIRED; a missing required field is INVALID_ARGUMENT",
    skipUnless: needStage,
    async run(run) {
      await expectCode(
        "NodeStageVolume of an unknown volume without staging_target_path",
        run.node.nodeStageVolume({ volumeId: unknownVolumeId(), volumeCapability: run.mountCapability() }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-stage.missing-capability",
    group: "NodeStageVolume",
    title: "NodeStageVolume without a volume_capability fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "volume_capability is REQUIRED; a missing required field is INVALID_ARGUMENT",
    skipUnless: needStage,
    async run(run) {
      const { stagingPath } = await run.workPaths();
      await expectCode(
        "NodeStageVolume of an unknown volume without volume_capability",
        run.node.nodeStageVolume({ volumeId: unknownVolumeId(), stagingTargetPath: stagingPath }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-stage.missing-access-type",
    group: "NodeStageVolume",
    title: "NodeStageVolume with a capability that is neither block nor mount fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "VolumeCapability: one of the access_type fields MUST be specified",
    skipUnless: needStage,
    async run(run) {
      const { stagingPath } = await run.workPaths();
      await expectCode(
        "NodeStageVolume with a capability without access_type",
        run.node.nodeStageVolume(
          {
            volumeId: unknownVolumeId(),
            stagingTargetPath: stagingPath,
            volumeCapability: { accessMode: { mode: run.mountCapability().accessMode?.mode ?? 1 } },
          },
          run.call(),
        ),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-stage.not-found",
    group: "NodeStageVolume",
    title: "NodeStageVolume of a volume that does not exist (any more) fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needStage,
    async run(run) {
      const gone = await deletedVolume(run);
      const { stagingPath } = await run.workPaths();
      run.registerStage(gone.volumeId, stagingPath);
      run.step("NodeStageVolume of the deleted volume, with the publish_context it had");
      await expectCode(
        "NodeStageVolume of a volume that does not exist",
        run.node.nodeStageVolume(
          {
            volumeId: gone.volumeId,
            stagingTargetPath: stagingPath,
            volumeCapability: run.mountCapability(),
            publishContext: gone.publishContext,
            volumeContext: gone.volumeContext,
          },
          run.call(),
        ),
        Code.NotFound,
      );
    },
  },
  {
    id: "node-stage.incompatible",
    group: "NodeStageVolume",
    title: "NodeStageVolume of a staged volume with another access type at the same path is refused",
    level: "MUST",
    rule: "Volume published but is incompatible with the specified volume_capability: 6 ALREADY_EXISTS (or 9 FAILED_PRECONDITION when the capability exceeds the volume's)",
    skipUnless: needs.all(needStage, needs.controller(ControllerCap.CREATE_DELETE_VOLUME)),
    async run(run) {
      const provisioned = await run.provision("restage", "mount");
      run.step("NodeStageVolume again at the same path with a block capability");
      const result = await outcome(
        run.node.nodeStageVolume(
          {
            volumeId: provisioned.volume.volumeId,
            stagingTargetPath: provisioned.stagingPath,
            volumeCapability: run.blockCapability(),
            publishContext: provisioned.publishContext,
            volumeContext: provisioned.volume.volumeContext,
          },
          run.call(),
        ),
      );
      verify(!result.ok, "staging a mount-staged volume again as block at the same path succeeded");
      verify(
        result.code === Code.AlreadyExists || result.code === Code.FailedPrecondition,
        `expected ALREADY_EXISTS or FAILED_PRECONDITION, got ${describeOutcome(result)}`,
      );
    },
  },
];

export const nodeUnstageChecks: Check[] = [
  {
    id: "node-unstage.missing-volume-id",
    group: "NodeUnstageVolume",
    title: "NodeUnstageVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeUnstageVolumeRequest.volume_id is REQUIRED",
    skipUnless: needStage,
    async run(run) {
      const { stagingPath } = await run.workPaths();
      await expectCode(
        "NodeUnstageVolume without volume_id",
        run.node.nodeUnstageVolume({ stagingTargetPath: stagingPath }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-unstage.missing-staging-path",
    group: "NodeUnstageVolume",
    title: "NodeUnstageVolume without a staging_target_path fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeUnstageVolumeRequest.staging_target_path is REQUIRED",
    skipUnless: needStage,
    async run(run) {
      await expectCode(
        "NodeUnstageVolume without staging_target_path",
        run.node.nodeUnstageVolume({ volumeId: unknownVolumeId() }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-unstage.not-staged",
    group: "NodeUnstageVolume",
    title: "NodeUnstageVolume of a volume that is not staged at the path succeeds",
    level: "MUST",
    rule: "If the volume is not staged to the staging_target_path, the Plugin MUST reply 0 OK",
    skipUnless: needs.all(needStage, needs.controller(ControllerCap.CREATE_DELETE_VOLUME)),
    async run(run) {
      const volume = await run.createTestVolume("notstaged");
      const { stagingPath } = await run.workPaths();
      await expectOk(
        "NodeUnstageVolume of a volume never staged",
        run.node.nodeUnstageVolume({ volumeId: volume.volumeId, stagingTargetPath: stagingPath }, run.call()),
      );
      run.step("NodeUnstageVolume at a path that does not exist");
      await expectOk(
        "NodeUnstageVolume at a missing path",
        run.node.nodeUnstageVolume({ volumeId: volume.volumeId, stagingTargetPath: join(stagingPath, "missing") }, run.call()),
      );
    },
  },
];

export const nodePublishChecks: Check[] = [
  {
    id: "node-publish.missing-volume-id",
    group: "NodePublishVolume",
    title: "NodePublishVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodePublishVolumeRequest.volume_id is REQUIRED",
    skipUnless: needNode,
    async run(run) {
      const paths = await run.workPaths();
      await expectCode(
        "NodePublishVolume without volume_id",
        run.node.nodePublishVolume(
          { stagingTargetPath: paths.stagingPath, targetPath: paths.targetPath, volumeCapability: run.mountCapability() },
          run.call(),
        ),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-publish.missing-target-path",
    group: "NodePublishVolume",
    title: "NodePublishVolume without a target_path fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "target_path is REQUIRED; a missing required field is INVALID_ARGUMENT",
    skipUnless: needNode,
    async run(run) {
      const paths = await run.workPaths();
      await expectCode(
        "NodePublishVolume of an unknown volume without target_path",
        run.node.nodePublishVolume(
          { volumeId: unknownVolumeId(), stagingTargetPath: paths.stagingPath, volumeCapability: run.mountCapability() },
          run.call(),
        ),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-publish.missing-capability",
    group: "NodePublishVolume",
    title: "NodePublishVolume without a volume_capability fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "volume_capability is REQUIRED; a missing required field is INVALID_ARGUMENT",
    skipUnless: needNode,
    async run(run) {
      const paths = await run.workPaths();
      await expectCode(
        "NodePublishVolume of an unknown volume without volume_capability",
        run.node.nodePublishVolume(
          { volumeId: unknownVolumeId(), stagingTargetPath: paths.stagingPath, targetPath: paths.targetPath },
          run.call(),
        ),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-publish.not-found",
    group: "NodePublishVolume",
    title: "NodePublishVolume of a volume that does not exist (any more) fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless(profile) {
      // With staging, the CO never publishes a volume it could not stage: NodeStageVolume's NOT_FOUND covers it.
      const base = needNode(profile);
      if (base !== undefined) return base;
      return profile.node.available && profile.node.caps.has(NodeCap.STAGE_UNSTAGE_VOLUME)
        ? "STAGE_UNSTAGE_VOLUME is advertised (node-stage.not-found applies)"
        : undefined;
    },
    async run(run) {
      const gone = await deletedVolume(run);
      const paths = await run.workPaths();
      run.registerPublish(gone.volumeId, paths.targetPath);
      run.step("NodePublishVolume of the deleted volume, with the publish_context it had");
      await expectCode(
        "NodePublishVolume of a volume that does not exist",
        run.node.nodePublishVolume(
          {
            volumeId: gone.volumeId,
            targetPath: paths.targetPath,
            volumeCapability: run.mountCapability(),
            publishContext: gone.publishContext,
            volumeContext: gone.volumeContext,
          },
          run.call(),
        ),
        Code.NotFound,
      );
    },
  },
  {
    id: "node-publish.missing-staging-path",
    group: "NodePublishVolume",
    title: "NodePublishVolume without a staging_target_path fails with FAILED_PRECONDITION when staging is advertised",
    level: "MUST",
    rule: "Staging target path not set (STAGE_UNSTAGE_VOLUME is advertised): 9 FAILED_PRECONDITION",
    skipUnless: needs.all(needStage, needs.controller(ControllerCap.CREATE_DELETE_VOLUME)),
    async run(run) {
      const provisioned = await run.provision("nostaging", "mount", { publish: false });
      run.registerPublish(provisioned.volume.volumeId, provisioned.targetPath);
      run.step("NodePublishVolume of the staged volume without staging_target_path");
      await expectCode(
        "NodePublishVolume without staging_target_path",
        run.node.nodePublishVolume(
          {
            volumeId: provisioned.volume.volumeId,
            targetPath: provisioned.targetPath,
            volumeCapability: provisioned.capability,
            publishContext: provisioned.publishContext,
            volumeContext: provisioned.volume.volumeContext,
          },
          run.call(),
        ),
        Code.FailedPrecondition,
      );
    },
  },
  {
    id: "node-publish.incompatible",
    group: "NodePublishVolume",
    title: "NodePublishVolume at a published target with another readonly flag fails with ALREADY_EXISTS",
    level: "MUST",
    rule: "Volume published but is incompatible with the specified volume_capability or readonly flag: 6 ALREADY_EXISTS (T1=T2, P1!=P2)",
    skipUnless: needNodeAndCreate,
    async run(run) {
      const provisioned = await run.provision("republish", "mount");
      run.step("NodePublishVolume at the same target, readonly");
      await expectCode(
        "NodePublishVolume again at the same target with readonly",
        run.node.nodePublishVolume(
          {
            volumeId: provisioned.volume.volumeId,
            stagingTargetPath: run.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME) ? provisioned.stagingPath : "",
            targetPath: provisioned.targetPath,
            volumeCapability: provisioned.capability,
            readonly: true,
            publishContext: provisioned.publishContext,
            volumeContext: provisioned.volume.volumeContext,
          },
          run.call(),
        ),
        Code.AlreadyExists,
      );
    },
  },
  secondTargetCheck("single"),
  secondTargetCheck("multi"),
];

/** The table for a second NodePublishVolume of one volume to another target path (T1!=T2, P1=P2) on the same node. */
function secondTargetCheck(mode: "single" | "multi"): Check {
  const accessMode = mode === "single" ? AccessMode.SINGLE_NODE_SINGLE_WRITER : AccessMode.SINGLE_NODE_MULTI_WRITER;
  const name = mode === "single" ? "SINGLE_NODE_SINGLE_WRITER" : "SINGLE_NODE_MULTI_WRITER";
  return {
    id: `node-publish.${mode}-writer-second-target`,
    group: "NodePublishVolume",
    title:
      mode === "single"
        ? "A second NodePublishVolume of a SINGLE_NODE_SINGLE_WRITER volume to another target fails with FAILED_PRECONDITION"
        : "A second NodePublishVolume of a SINGLE_NODE_MULTI_WRITER volume to another target succeeds",
    level: "SHOULD",
    rule: `With SINGLE_NODE_MULTI_WRITER support, a second NodePublishVolume (T1!=T2, P1=P2) of a ${name} volume SHOULD return ${mode === "single" ? "FAILED_PRECONDITION" : "OK"}`,
    skipUnless: needs.all(
      needs.node(NodeCap.SINGLE_NODE_MULTI_WRITER),
      needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.SINGLE_NODE_MULTI_WRITER),
    ),
    async run(run) {
      const first = await run.provision(`${mode}writer`, "mount", { mode: accessMode });
      const second = await run.workPaths("second");
      run.registerPublish(first.volume.volumeId, second.targetPath);
      run.step("NodePublishVolume to a second target path");
      const call = run.node.nodePublishVolume(
        {
          volumeId: first.volume.volumeId,
          stagingTargetPath: run.hasNodeCap(NodeCap.STAGE_UNSTAGE_VOLUME) ? first.stagingPath : "",
          targetPath: second.targetPath,
          volumeCapability: first.capability,
          publishContext: first.publishContext,
          volumeContext: first.volume.volumeContext,
        },
        run.call(),
      );
      if (mode === "single") await expectCode(`second NodePublishVolume of a ${name} volume`, call, Code.FailedPrecondition);
      else await expectOk(`second NodePublishVolume of a ${name} volume`, call);
    },
  };
}

export const nodeUnpublishChecks: Check[] = [
  {
    id: "node-unpublish.missing-volume-id",
    group: "NodeUnpublishVolume",
    title: "NodeUnpublishVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeUnpublishVolumeRequest.volume_id is REQUIRED",
    skipUnless: needNode,
    async run(run) {
      const { targetPath } = await run.workPaths();
      await expectCode(
        "NodeUnpublishVolume without volume_id",
        run.node.nodeUnpublishVolume({ targetPath }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-unpublish.missing-target-path",
    group: "NodeUnpublishVolume",
    title: "NodeUnpublishVolume without a target_path fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeUnpublishVolumeRequest.target_path is REQUIRED",
    skipUnless: needNode,
    async run(run) {
      await expectCode(
        "NodeUnpublishVolume without target_path",
        run.node.nodeUnpublishVolume({ volumeId: unknownVolumeId() }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-unpublish.not-published",
    group: "NodeUnpublishVolume",
    title: "NodeUnpublishVolume of a volume that is not published at the path succeeds",
    level: "MUST",
    rule: "NodeUnpublishVolume MUST be idempotent: a target that was never set up (or is already gone) is not an error",
    skipUnless: needNodeAndCreate,
    async run(run) {
      const volume = await run.createTestVolume("notpublished");
      const { targetPath } = await run.workPaths();
      await expectOk(
        "NodeUnpublishVolume of a volume never published",
        run.node.nodeUnpublishVolume({ volumeId: volume.volumeId, targetPath }, run.call()),
      );
    },
  },
];

export const nodeStatsChecks: Check[] = [
  {
    id: "node-get-volume-stats.missing-volume-id",
    group: "NodeGetVolumeStats",
    title: "NodeGetVolumeStats without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeGetVolumeStatsRequest.volume_id is REQUIRED",
    skipUnless: needStats,
    async run(run) {
      const dir = await plainDir(run, "stats");
      await expectCode(
        "NodeGetVolumeStats without volume_id",
        run.node.nodeGetVolumeStats({ volumePath: dir }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-get-volume-stats.missing-volume-path",
    group: "NodeGetVolumeStats",
    title: "NodeGetVolumeStats without a volume_path fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeGetVolumeStatsRequest.volume_path is REQUIRED",
    skipUnless: needStats,
    async run(run) {
      await expectCode(
        "NodeGetVolumeStats of an unknown volume without volume_path",
        run.node.nodeGetVolumeStats({ volumeId: unknownVolumeId() }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-get-volume-stats.not-found",
    group: "NodeGetVolumeStats",
    title: "NodeGetVolumeStats of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist (on the specified volume_path): 5 NOT_FOUND",
    skipUnless: needStats,
    async run(run) {
      const dir = await plainDir(run, "stats");
      await expectCode(
        "NodeGetVolumeStats of an unknown volume",
        run.node.nodeGetVolumeStats({ volumeId: unknownVolumeId(), volumePath: dir }, run.call()),
        Code.NotFound,
      );
    },
  },
  {
    id: "node-get-volume-stats.wrong-path",
    group: "NodeGetVolumeStats",
    title: "NodeGetVolumeStats of a published volume at a path that does not hold it fails with NOT_FOUND",
    level: "MUST",
    rule: "The volume does not exist on the specified volume_path: 5 NOT_FOUND",
    skipUnless: needs.all(needStats, needs.controller(ControllerCap.CREATE_DELETE_VOLUME)),
    async run(run) {
      const provisioned = await run.provision("stats", "mount");
      const dir = await plainDir(run, "elsewhere");
      await expectCode(
        "NodeGetVolumeStats at a path without the volume",
        run.node.nodeGetVolumeStats({ volumeId: provisioned.volume.volumeId, volumePath: dir }, run.call()),
        Code.NotFound,
      );
    },
  },
];

export const nodeExpandChecks: Check[] = [
  {
    id: "node-expand.missing-volume-id",
    group: "NodeExpandVolume",
    title: "NodeExpandVolume without a volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "NodeExpandVolumeRequest.volume_id is REQUIRED",
    skipUnless: needNodeExpand,
    async run(run) {
      const dir = await plainDir(run, "expand");
      await expectCode(
        "NodeExpandVolume without volume_id",
        run.node.nodeExpandVolume({ volumePath: dir, capacityRange: { requiredBytes: run.options.testVolumeExpandSize } }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-expand.missing-volume-path",
    group: "NodeExpandVolume",
    title: "NodeExpandVolume without a volume_path fails with INVALID_ARGUMENT, before looking the volume up",
    level: "MUST",
    rule: "NodeExpandVolumeRequest.volume_path is REQUIRED",
    skipUnless: needNodeExpand,
    async run(run) {
      await expectCode(
        "NodeExpandVolume of an unknown volume without volume_path",
        run.node.nodeExpandVolume(
          { volumeId: unknownVolumeId(), capacityRange: { requiredBytes: run.options.testVolumeExpandSize } },
          run.call(),
        ),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "node-expand.not-found",
    group: "NodeExpandVolume",
    title: "NodeExpandVolume of a volume that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Volume does not exist: 5 NOT_FOUND",
    skipUnless: needNodeExpand,
    async run(run) {
      const dir = await plainDir(run, "expand");
      await expectCode(
        "NodeExpandVolume of an unknown volume",
        run.node.nodeExpandVolume(
          { volumeId: unknownVolumeId(), volumePath: dir, capacityRange: { requiredBytes: run.options.testVolumeExpandSize } },
          run.call(),
        ),
        Code.NotFound,
      );
    },
  },
];
