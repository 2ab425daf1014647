import { Code } from "@connectrpc/connect";
import { GroupControllerServiceCapability_RPC_Type as GroupCap, type VolumeGroupSnapshot } from "../../gen/csi/v1/csi_pb.js";
import { fail, skip, verify, type Check } from "../check.js";
import type { CheckRun } from "../context.js";
import { expectCode, expectOk } from "../expect.js";
import { ControllerCap, needs, PluginService, type DriverProfile } from "../profile.js";

/**
 * The GroupController service: its capability, what CreateVolumeGroupSnapshot
 * returns (one ready snapshot per source volume, each naming the group),
 * idempotency by name and ALREADY_EXISTS for another set of volumes,
 * GetVolumeGroupSnapshot and DeleteVolumeGroupSnapshot with their codes, a
 * member refused by DeleteSnapshot alone, and a member restored as a volume.
 */

const group = "GroupSnapshots" as const;

const needService = (p: DriverProfile): string | undefined =>
  p.pluginServices.has(PluginService.GROUP_CONTROLLER_SERVICE) ? undefined : "GROUP_CONTROLLER_SERVICE is not advertised";
const needVolumes = needs.all(needService, needs.controller(ControllerCap.CREATE_DELETE_VOLUME));

/** Two test volumes and their group snapshot, deleted (group first) when the check ends. */
async function groupOfTwo(run: CheckRun, label: string): Promise<{ ids: string[]; name: string; snapshot: VolumeGroupSnapshot }> {
  const ids = [(await run.createTestVolume(`${label}-a`)).volumeId, (await run.createTestVolume(`${label}-b`)).volumeId];
  const name = run.uniqueName(label);
  run.step("CreateVolumeGroupSnapshot of two volumes");
  const response = await expectOk(
    "CreateVolumeGroupSnapshot",
    run.clients.groupController.createVolumeGroupSnapshot(
      { name, sourceVolumeIds: ids, parameters: { ...run.options.snapshotParameters }, secrets: run.secrets("CreateVolumeGroupSnapshot") },
      run.call(),
    ),
  );
  const snapshot = response.groupSnapshot;
  if (snapshot === undefined || snapshot.groupSnapshotId === "")
    fail("CreateVolumeGroupSnapshot: no group_snapshot or an empty group_snapshot_id");
  const snapshotIds = snapshot.snapshots.map((s) => s.snapshotId);
  run.cleanup.add(`group:${snapshot.groupSnapshotId}`, `DeleteVolumeGroupSnapshot ${snapshot.groupSnapshotId}`, async () => {
    await run.clients.groupController.deleteVolumeGroupSnapshot(
      { groupSnapshotId: snapshot.groupSnapshotId, snapshotIds, secrets: run.secrets("DeleteVolumeGroupSnapshot") },
      run.call(),
    );
  });
  return { ids, name, snapshot };
}

function shapeProblems(snapshot: VolumeGroupSnapshot, sourceIds: readonly string[]): string[] {
  const problems: string[] = [];
  const sources = snapshot.snapshots.map((s) => s.sourceVolumeId).sort();
  if (JSON.stringify(sources) !== JSON.stringify([...sourceIds].sort()))
    problems.push(`snapshots are of ${sources.join(", ") || "nothing"}, not one per source volume (${sourceIds.join(", ")})`);
  for (const s of snapshot.snapshots) {
    if (s.snapshotId === "") problems.push("a member has an empty snapshot_id");
    if (s.groupSnapshotId !== snapshot.groupSnapshotId)
      problems.push(`member ${s.snapshotId} has group_snapshot_id "${s.groupSnapshotId}", not "${snapshot.groupSnapshotId}"`);
  }
  if (snapshot.creationTime === undefined) problems.push("creation_time is REQUIRED");
  if (snapshot.readyToUse && snapshot.snapshots.some((s) => !s.readyToUse))
    problems.push("ready_to_use is true while a member is not ready (the SP MUST set it to false)");
  return problems;
}

export const groupSnapshotChecks: Check[] = [
  {
    id: "group-snapshot.capabilities",
    group,
    title: "GroupControllerGetCapabilities lists CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT",
    level: "MUST",
    rule: "A plugin with GROUP_CONTROLLER_SERVICE implements GroupControllerGetCapabilities; the group snapshot RPCs need CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT",
    skipUnless: needService,
    async run(run) {
      const response = await expectOk(
        "GroupControllerGetCapabilities",
        run.clients.groupController.groupControllerGetCapabilities({}, run.call()),
      );
      const types = response.capabilities.flatMap((c) => (c.type.case === "rpc" ? [c.type.value.type] : []));
      verify(types.includes(GroupCap.CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT), `capabilities are [${types.join(", ")}]`);
    },
  },
  {
    id: "group-snapshot.missing-fields",
    group,
    title: "CreateVolumeGroupSnapshot without a name or source_volume_ids fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "name and source_volume_ids are REQUIRED",
    skipUnless: needService,
    async run(run) {
      const gc = run.clients.groupController;
      await expectCode(
        "CreateVolumeGroupSnapshot without source_volume_ids",
        gc.createVolumeGroupSnapshot({ name: run.uniqueName("no-sources") }, run.call()),
        Code.InvalidArgument,
      );
      await expectCode(
        "CreateVolumeGroupSnapshot without a name",
        gc.createVolumeGroupSnapshot({ sourceVolumeIds: ["conformance-no-such-volume"] }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "group-snapshot.create",
    group,
    title: "CreateVolumeGroupSnapshot cuts one snapshot per volume, each naming the group, and is idempotent by name",
    level: "MUST",
    rule: "CreateVolumeGroupSnapshot MUST be idempotent for the same name, source_volume_ids and parameters; snapshots and group_snapshot_id are REQUIRED",
    skipUnless: needVolumes,
    async run(run) {
      const { ids, name, snapshot } = await groupOfTwo(run, "group");
      const problems = shapeProblems(snapshot, ids);
      if (problems.length > 0) fail(problems.join("; "));
      run.step("CreateVolumeGroupSnapshot again, the volumes in the other order");
      const again = await expectOk(
        "CreateVolumeGroupSnapshot (repeated)",
        run.clients.groupController.createVolumeGroupSnapshot(
          {
            name,
            sourceVolumeIds: [...ids].reverse(),
            parameters: { ...run.options.snapshotParameters },
            secrets: run.secrets("CreateVolumeGroupSnapshot"),
          },
          run.call(),
        ),
      );
      verify(
        again.groupSnapshot?.groupSnapshotId === snapshot.groupSnapshotId,
        `the repeated call returned group ${again.groupSnapshot?.groupSnapshotId ?? "(none)"}, not ${snapshot.groupSnapshotId}`,
      );
    },
  },
  {
    id: "group-snapshot.same-name-other-volumes",
    group,
    title: "CreateVolumeGroupSnapshot with an existing name and another set of volumes fails with ALREADY_EXISTS",
    level: "MUST",
    rule: "Group snapshot already exists but is incompatible: 6 ALREADY_EXISTS",
    skipUnless: needVolumes,
    async run(run) {
      const { ids, name } = await groupOfTwo(run, "group-conflict");
      await expectCode(
        "CreateVolumeGroupSnapshot with one volume of the group only",
        run.clients.groupController.createVolumeGroupSnapshot(
          {
            name,
            sourceVolumeIds: [ids[0] ?? ""],
            parameters: { ...run.options.snapshotParameters },
            secrets: run.secrets("CreateVolumeGroupSnapshot"),
          },
          run.call(),
        ),
        Code.AlreadyExists,
      );
    },
  },
  {
    id: "group-snapshot.get",
    group,
    title: "GetVolumeGroupSnapshot returns the group; a mismatched snapshot_ids is INVALID_ARGUMENT, an unknown group NOT_FOUND",
    level: "MUST",
    rule: "GetVolumeGroupSnapshot: snapshot list mismatch 3 INVALID_ARGUMENT (SHOULD), group does not exist 5 NOT_FOUND",
    skipUnless: needVolumes,
    async run(run) {
      const { ids, snapshot } = await groupOfTwo(run, "group-get");
      const gc = run.clients.groupController;
      const snapshotIds = snapshot.snapshots.map((s) => s.snapshotId);
      const got = await expectOk(
        "GetVolumeGroupSnapshot",
        gc.getVolumeGroupSnapshot(
          { groupSnapshotId: snapshot.groupSnapshotId, snapshotIds, secrets: run.secrets("GetVolumeGroupSnapshot") },
          run.call(),
        ),
      );
      if (got.groupSnapshot === undefined) fail("GetVolumeGroupSnapshot: no group_snapshot");
      const problems = shapeProblems(got.groupSnapshot, ids);
      if (problems.length > 0) fail(`GetVolumeGroupSnapshot: ${problems.join("; ")}`);
      await expectCode(
        "GetVolumeGroupSnapshot with one member's id only",
        gc.getVolumeGroupSnapshot({ groupSnapshotId: snapshot.groupSnapshotId, snapshotIds: snapshotIds.slice(0, 1) }, run.call()),
        Code.InvalidArgument,
      );
      await expectCode(
        "GetVolumeGroupSnapshot of an unknown group",
        gc.getVolumeGroupSnapshot(
          { groupSnapshotId: "conformance-no-such-group", snapshotIds: ["conformance-no-such-snapshot"] },
          run.call(),
        ),
        Code.NotFound,
      );
    },
  },
  {
    id: "group-snapshot.member-delete",
    group,
    title: "DeleteSnapshot of a group's member alone fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "DeleteSnapshot: snapshot is part of a group and CAN NOT be deleted stand alone: 3 INVALID_ARGUMENT",
    skipUnless: needs.all(needVolumes, needs.controller(ControllerCap.CREATE_DELETE_SNAPSHOT)),
    async run(run) {
      const { snapshot } = await groupOfTwo(run, "group-member");
      const member = snapshot.snapshots[0];
      if (member === undefined) skip("the group has no member");
      await expectCode(
        `DeleteSnapshot of member ${member.snapshotId}`,
        run.controller.deleteSnapshot({ snapshotId: member.snapshotId, secrets: run.secrets("DeleteSnapshot") }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "group-snapshot.restore-member",
    group,
    title: "A member of a group snapshot restores into a new volume",
    level: "SHOULD",
    rule: "After snapshot creation, any individual snapshot from the group MAY be used as a source to provision a new volume",
    skipUnless: needs.all(needVolumes, needs.controller(ControllerCap.CREATE_DELETE_SNAPSHOT)),
    async run(run) {
      const { snapshot } = await groupOfTwo(run, "group-restore");
      const member = snapshot.snapshots[0];
      if (member === undefined) skip("the group has no member");
      const volume = await run.createVolume(
        run.volumeRequest(run.uniqueName("group-restored"), "mount", {
          volumeContentSource: { type: { case: "snapshot", value: { snapshotId: member.snapshotId } } },
        }),
        `CreateVolume from member ${member.snapshotId}`,
      );
      verify(
        volume.contentSource?.type.case === "snapshot" && volume.contentSource.type.value.snapshotId === member.snapshotId,
        "the restored volume does not report the member as its content source",
      );
    },
  },
  {
    id: "group-snapshot.delete",
    group,
    title: "DeleteVolumeGroupSnapshot deletes the group and its members, idempotently; a mismatched snapshot_ids is INVALID_ARGUMENT",
    level: "MUST",
    rule: "DeleteVolumeGroupSnapshot MUST be idempotent (unknown group: 0 OK); snapshot list mismatch: 3 INVALID_ARGUMENT",
    skipUnless: needVolumes,
    async run(run) {
      const { snapshot } = await groupOfTwo(run, "group-delete");
      const gc = run.clients.groupController;
      const snapshotIds = snapshot.snapshots.map((s) => s.snapshotId);
      const request = { groupSnapshotId: snapshot.groupSnapshotId, snapshotIds, secrets: run.secrets("DeleteVolumeGroupSnapshot") };
      await expectCode(
        "DeleteVolumeGroupSnapshot with one member's id only",
        gc.deleteVolumeGroupSnapshot({ ...request, snapshotIds: snapshotIds.slice(0, 1) }, run.call()),
        Code.InvalidArgument,
      );
      for (let i = 1; i <= 2; i++)
        await expectOk(`DeleteVolumeGroupSnapshot (call ${i})`, gc.deleteVolumeGroupSnapshot(request, run.call()));
      run.cleanup.release(`group:${snapshot.groupSnapshotId}`);
      await expectCode("GetVolumeGroupSnapshot after deletion", gc.getVolumeGroupSnapshot(request, run.call()), Code.NotFound);
      if (run.hasControllerCap(ControllerCap.LIST_SNAPSHOTS)) {
        const listed = await expectOk(
          "ListSnapshots of a deleted member",
          run.controller.listSnapshots({ snapshotId: snapshotIds[0] ?? "" }, run.call()),
        );
        verify(listed.entries.length === 0, `member ${snapshotIds[0] ?? ""} is still listed after its group was deleted`);
      }
    },
  },
];
