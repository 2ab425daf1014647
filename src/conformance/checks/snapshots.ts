import { Code } from "@connectrpc/connect";
import type { Volume } from "../../gen/csi/v1/csi_pb.js";
import { fail, verify, type Check } from "../check.js";
import type { CheckRun, CreateVolumeRequestInit } from "../context.js";
import { codeName, describeOutcome, expectCode, expectOk, outcome, expectFailed } from "../expect.js";
import { ControllerCap, needs } from "../profile.js";
import { MAX_NAME_LENGTH } from "../spec-rules.js";
import { describeVolume, snapshotProblems, timestampText, unknownSnapshotId, unknownVolumeId, volumeProblems } from "./shared.js";

const group = "Snapshots" as const;
const needSnapshots = needs.controller(ControllerCap.CREATE_DELETE_SNAPSHOT);
const needSnapshotsCreate = needs.controller(ControllerCap.CREATE_DELETE_SNAPSHOT, ControllerCap.CREATE_DELETE_VOLUME);
const needClone = needs.controller(ControllerCap.CLONE_VOLUME, ControllerCap.CREATE_DELETE_VOLUME);

function snapshotSource(snapshotId: string): Partial<CreateVolumeRequestInit> {
  return { volumeContentSource: { type: { case: "snapshot", value: { snapshotId } } } };
}

function volumeSource(volumeId: string): Partial<CreateVolumeRequestInit> {
  return { volumeContentSource: { type: { case: "volume", value: { volumeId } } } };
}

/** CreateVolume from a source that must succeed, validated, repeated for idempotency. */
async function createFromSource(run: CheckRun, request: CreateVolumeRequestInit, what: string): Promise<Volume> {
  run.step(what);
  const volume = await run.createVolume(request, what);
  const problems = volumeProblems(run, request, volume);
  verify(problems.length === 0, `${what} returned ${describeVolume(volume)}: ${problems.join("; ")}`);
  for (let i = 2; i <= run.options.idempotentCount; i++) {
    run.step(`${what} (call ${i})`);
    const again = await run.createVolume(request, `${what} (call ${i})`);
    verify(again.volumeId === volume.volumeId, `call ${i} returned volume ${again.volumeId}, the first ${volume.volumeId}`);
  }
  return volume;
}

/** A CreateVolume that must be refused (registering anything created by mistake). */
async function expectCreateRefused(run: CheckRun, what: string, request: CreateVolumeRequestInit, ...codes: Code[]): Promise<void> {
  run.step(what);
  const result = await outcome(run.controller.createVolume(request, run.call()));
  if (result.ok) {
    if (result.value.volume !== undefined && result.value.volume.volumeId !== "") run.registerVolume(result.value.volume.volumeId);
    fail(
      `${what}: expected ${codes.map(codeName).join(" or ")}, got OK (${result.value.volume !== undefined ? describeVolume(result.value.volume) : "no volume"})`,
    );
  }
  await expectCode(what, Promise.reject(result.error), ...codes);
}

export const snapshotChecks: Check[] = [
  {
    id: "create-snapshot.missing-name",
    group,
    title: "CreateSnapshot without a name fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "CreateSnapshotRequest.name is REQUIRED",
    skipUnless: needSnapshots,
    async run(run) {
      await expectCode(
        "CreateSnapshot without a name",
        run.controller.createSnapshot(run.snapshotRequest("", unknownVolumeId()), run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-snapshot.missing-source",
    group,
    title: "CreateSnapshot without a source_volume_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "CreateSnapshotRequest.source_volume_id is REQUIRED",
    skipUnless: needSnapshots,
    async run(run) {
      await expectCode(
        "CreateSnapshot without source_volume_id",
        run.controller.createSnapshot(run.snapshotRequest(run.uniqueName("nosrc"), ""), run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "create-snapshot.source-not-found",
    group,
    title: "CreateSnapshot of a volume that does not exist fails with NOT_FOUND",
    level: "SHOULD",
    rule: "The plugin MUST return a non-ok code when unable to complete the call; NOT_FOUND is the canonical code for a missing source volume",
    skipUnless: needSnapshots,
    async run(run) {
      const name = run.uniqueName("nosrc");
      const result = await outcome(run.controller.createSnapshot(run.snapshotRequest(name, unknownVolumeId()), run.call()));
      if (result.ok && result.value.snapshot !== undefined) run.registerSnapshot(result.value.snapshot.snapshotId);
      expectFailed("CreateSnapshot of an unknown volume", result, Code.NotFound);
    },
  },
  {
    id: "create-snapshot.fields",
    group,
    title: "CreateSnapshot returns a well-formed snapshot that becomes ready to use",
    level: "MUST",
    rule: "snapshot_id (128 bytes max), source_volume_id and creation_time are REQUIRED; size_bytes MUST NOT be negative; ready_to_use becomes true once processed",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const volume = await run.createTestVolume("snapsrc");
      run.step("CreateSnapshot, repeated until ready_to_use");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), volume.volumeId));
      const problems = snapshotProblems(snapshot, volume.volumeId);
      verify(problems.length === 0, problems.join("; "));
      verify(
        snapshot.groupSnapshotId === "",
        `group_snapshot_id ${JSON.stringify(snapshot.groupSnapshotId)} is set on a snapshot not made as part of a group`,
      );
      if (volume.capacityBytes > 0n && snapshot.sizeBytes > volume.capacityBytes)
        run.note(`size_bytes ${snapshot.sizeBytes} exceeds the source's capacity ${volume.capacityBytes}`);
    },
  },
  {
    id: "create-snapshot.idempotent",
    group,
    title: "CreateSnapshot repeated with the same name and source returns the same snapshot",
    level: "MUST",
    rule: "CreateSnapshot MUST be idempotent: the same snapshot (same snapshot_id, same creation_time of the point-in-time cut)",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const volume = await run.createTestVolume("snapsrc");
      const request = run.snapshotRequest(run.uniqueName("snap"), volume.volumeId);
      run.step("CreateSnapshot");
      const first = await run.createSnapshot(request);
      for (let i = 2; i <= run.options.idempotentCount; i++) {
        run.step(`CreateSnapshot (call ${i})`);
        const again = await run.createSnapshot(request);
        verify(again.snapshotId === first.snapshotId, `call ${i} returned snapshot ${again.snapshotId}, the first ${first.snapshotId}`);
        verify(
          timestampText(again) === timestampText(first),
          `call ${i} reports creation_time ${timestampText(again)}, the first ${timestampText(first)}`,
        );
      }
    },
  },
  {
    id: "create-snapshot.same-name-other-source",
    group,
    title: "CreateSnapshot with an existing name but another source fails with ALREADY_EXISTS",
    level: "MUST",
    rule: "Snapshot already exists but is incompatible with the specified volume_id: 6 ALREADY_EXISTS",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const first = await run.createTestVolume("snapsrc");
      const second = await run.createTestVolume("snapother");
      const name = run.uniqueName("snap");
      run.step("CreateSnapshot of the first volume");
      await run.createSnapshot(run.snapshotRequest(name, first.volumeId));
      run.step("CreateSnapshot with the same name of the second volume");
      const result = await outcome(run.controller.createSnapshot(run.snapshotRequest(name, second.volumeId), run.call()));
      if (result.ok && result.value.snapshot !== undefined) run.registerSnapshot(result.value.snapshot.snapshotId);
      expectFailed("CreateSnapshot with an existing name and another source", result, Code.AlreadyExists);
    },
  },
  {
    id: "create-snapshot.max-length-name",
    group,
    title: "CreateSnapshot accepts a 128-character name, idempotently",
    level: "MUST",
    rule: "Any Unicode string that conforms to the length limit is allowed as a snapshot name",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const volume = await run.createTestVolume("snapsrc");
      const name = `${run.uniqueName("maxlen")}-${"x".repeat(MAX_NAME_LENGTH)}`.slice(0, MAX_NAME_LENGTH);
      const request = run.snapshotRequest(name, volume.volumeId);
      run.step("CreateSnapshot with a 128-character name");
      const first = await run.createSnapshot(request);
      run.step("CreateSnapshot with the same name again");
      const again = await run.createSnapshot(request);
      verify(
        again.snapshotId === first.snapshotId,
        `the repeated call returned snapshot ${again.snapshotId}, the first ${first.snapshotId}`,
      );
    },
  },
  {
    id: "delete-snapshot.missing-id",
    group,
    title: "DeleteSnapshot without a snapshot_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "DeleteSnapshotRequest.snapshot_id is REQUIRED",
    skipUnless: needSnapshots,
    async run(run) {
      await expectCode(
        "DeleteSnapshot without snapshot_id",
        run.controller.deleteSnapshot({ secrets: run.secrets("DeleteSnapshot") }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "delete-snapshot.unknown-id",
    group,
    title: "DeleteSnapshot of a snapshot that does not exist succeeds",
    level: "MUST",
    rule: "If a snapshot corresponding to the specified snapshot_id does not exist, the Plugin MUST reply 0 OK",
    skipUnless: needSnapshots,
    async run(run) {
      await expectOk(
        "DeleteSnapshot of an unknown snapshot",
        run.controller.deleteSnapshot({ snapshotId: unknownSnapshotId(), secrets: run.secrets("DeleteSnapshot") }, run.call()),
      );
    },
  },
  {
    id: "delete-snapshot.idempotent",
    group,
    title: "DeleteSnapshot removes the snapshot and succeeds when repeated",
    level: "MUST",
    rule: "DeleteSnapshot MUST be idempotent; a deleted snapshot is no source (NOT_FOUND) and is not listed",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const volume = await run.createTestVolume("snapsrc");
      run.step("CreateSnapshot");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), volume.volumeId));
      for (let i = 1; i <= run.options.idempotentCount; i++) {
        run.step(`DeleteSnapshot (call ${i})`);
        await run.deleteSnapshot(snapshot.snapshotId, `DeleteSnapshot (call ${i})`);
      }
      await expectCreateRefused(
        run,
        "CreateVolume from the deleted snapshot",
        run.volumeRequest(run.uniqueName("fromdeleted"), "mount", snapshotSource(snapshot.snapshotId)),
        Code.NotFound,
      );
      if (run.hasControllerCap(ControllerCap.LIST_SNAPSHOTS)) {
        run.step("ListSnapshots by the deleted snapshot's id");
        const listed = await expectOk(
          "ListSnapshots by snapshot_id",
          run.controller.listSnapshots({ snapshotId: snapshot.snapshotId, secrets: run.secrets("ListSnapshots") }, run.call()),
        );
        verify(listed.entries.length === 0, `ListSnapshots still lists deleted snapshot ${snapshot.snapshotId}`);
      }
    },
  },
  {
    id: "get-snapshot.missing-id",
    group,
    title: "GetSnapshot without a snapshot_id fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "GetSnapshotRequest.snapshot_id is REQUIRED",
    skipUnless: needs.controller(ControllerCap.GET_SNAPSHOT),
    async run(run) {
      await expectCode(
        "GetSnapshot without snapshot_id",
        run.controller.getSnapshot({ secrets: run.secrets("GetSnapshot") }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "get-snapshot.not-found",
    group,
    title: "GetSnapshot of a snapshot that does not exist fails with NOT_FOUND",
    level: "MUST",
    rule: "Snapshot does not exist: 5 NOT_FOUND",
    skipUnless: needs.controller(ControllerCap.GET_SNAPSHOT),
    async run(run) {
      await expectCode(
        "GetSnapshot of an unknown snapshot",
        run.controller.getSnapshot({ snapshotId: unknownSnapshotId(), secrets: run.secrets("GetSnapshot") }, run.call()),
        Code.NotFound,
      );
    },
  },
  {
    id: "get-snapshot.existing",
    group,
    title: "GetSnapshot describes an existing snapshot as CreateSnapshot did",
    level: "MUST",
    rule: "GetSnapshotResponse.snapshot is REQUIRED and holds current information about the snapshot",
    skipUnless: needs.controller(ControllerCap.GET_SNAPSHOT, ControllerCap.CREATE_DELETE_SNAPSHOT, ControllerCap.CREATE_DELETE_VOLUME),
    async run(run) {
      const volume = await run.createTestVolume("snapsrc");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), volume.volumeId));
      run.step("GetSnapshot");
      const answer = await expectOk(
        "GetSnapshot",
        run.controller.getSnapshot({ snapshotId: snapshot.snapshotId, secrets: run.secrets("GetSnapshot") }, run.call()),
      );
      verify(answer.snapshot !== undefined, "the response has no snapshot (REQUIRED)");
      verify(answer.snapshot.snapshotId === snapshot.snapshotId, `GetSnapshot returned snapshot ${answer.snapshot.snapshotId}`);
      const problems = snapshotProblems(answer.snapshot, volume.volumeId);
      verify(problems.length === 0, problems.join("; "));
      verify(
        timestampText(answer.snapshot) === timestampText(snapshot),
        `creation_time ${timestampText(answer.snapshot)} differs from CreateSnapshot's ${timestampText(snapshot)}`,
      );
    },
  },
  {
    id: "restore.from-snapshot",
    group,
    title: "CreateVolume from a snapshot creates a volume at least as large as the snapshot, idempotently",
    level: "MUST",
    rule: "Plugins supporting CREATE_DELETE_SNAPSHOT MUST support creating a volume from a snapshot; the size of the volume MUST NOT be less than the size of the source snapshot",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const source = await run.createTestVolume("snapsrc");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), source.volumeId));
      const request = run.volumeRequest(run.uniqueName("restore"), "mount", snapshotSource(snapshot.snapshotId));
      const restored = await createFromSource(run, request, "CreateVolume from the snapshot");
      verify(
        restored.capacityBytes === 0n || restored.capacityBytes >= snapshot.sizeBytes,
        `the restored volume has ${restored.capacityBytes} bytes, less than the snapshot's ${snapshot.sizeBytes}`,
      );
    },
  },
  {
    id: "restore.larger",
    group,
    title: "CreateVolume from a snapshot with a larger size honours the size, or answers OUT_OF_RANGE",
    level: "MUST",
    rule: "If the requested size is larger than the snapshot, the Plugin can refuse with OUT_OF_RANGE or MUST provide a volume of the requested (larger) size",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const source = await run.createTestVolume("snapsrc");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), source.volumeId));
      const required = run.options.testVolumeExpandSize;
      const request = run.volumeRequest(run.uniqueName("restorebig"), "mount", {
        ...snapshotSource(snapshot.snapshotId),
        capacityRange: { requiredBytes: required },
      });
      run.step(`CreateVolume from the snapshot with required_bytes ${required}`);
      const result = await outcome(run.controller.createVolume(request, run.call()));
      if (!result.ok) {
        verify(result.code === Code.OutOfRange, `expected OK or OUT_OF_RANGE, got ${describeOutcome(result)}`);
        run.note("the driver does not restore into larger volumes (OUT_OF_RANGE)");
        return;
      }
      const volume = result.value.volume;
      if (volume === undefined) fail("CreateVolume returned no volume");
      run.registerVolume(volume.volumeId);
      const problems = volumeProblems(run, request, volume);
      verify(problems.length === 0, problems.join("; "));
    },
  },
  {
    id: "restore.smaller",
    group,
    title: "CreateVolume from a snapshot with a limit below the snapshot's size fails with OUT_OF_RANGE",
    level: "MUST",
    rule: "Unsupported capacity_range: OUT_OF_RANGE, for example when trying to create a volume smaller than the source snapshot",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const source = await run.createTestVolume("snapsrc");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), source.volumeId));
      const size = snapshot.sizeBytes > 0n ? snapshot.sizeBytes : source.capacityBytes;
      if (size <= 1n) {
        run.note("neither the snapshot nor its source reports a size; nothing to compare");
        return;
      }
      const limit = size / 2n;
      await expectCreateRefused(
        run,
        `CreateVolume from a ${size}-byte snapshot with limit_bytes ${limit}`,
        run.volumeRequest(run.uniqueName("restoresmall"), "mount", {
          ...snapshotSource(snapshot.snapshotId),
          capacityRange: { requiredBytes: limit, limitBytes: limit },
        }),
        Code.OutOfRange,
      );
    },
  },
  {
    id: "restore.same-name-other-source",
    group,
    title: "CreateVolume with an existing name but another content source fails with ALREADY_EXISTS",
    level: "MUST",
    rule: "Volume already exists but is incompatible with the specified volume_content_source: 6 ALREADY_EXISTS",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const source = await run.createTestVolume("snapsrc");
      const first = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), source.volumeId));
      const second = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), source.volumeId));
      const name = run.uniqueName("restore");
      run.step("CreateVolume from the first snapshot");
      await run.createVolume(run.volumeRequest(name, "mount", snapshotSource(first.snapshotId)));
      await expectCreateRefused(
        run,
        "CreateVolume with the same name from the second snapshot",
        run.volumeRequest(name, "mount", snapshotSource(second.snapshotId)),
        Code.AlreadyExists,
      );
      await expectCreateRefused(run, "CreateVolume with the same name and no source", run.volumeRequest(name), Code.AlreadyExists);
    },
  },
  {
    id: "delete-volume.keeps-snapshots",
    group,
    title: "Deleting a volume leaves its snapshots usable (or is refused with FAILED_PRECONDITION)",
    level: "MUST",
    rule: "If the plugin deletes a volume without affecting its snapshots, they MUST still be fully operational and listed; otherwise DeleteVolume MUST fail with FAILED_PRECONDITION and leave the volume unaltered",
    skipUnless: needSnapshotsCreate,
    async run(run) {
      const source = await run.createTestVolume("snapsrc");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), source.volumeId));
      run.step("DeleteVolume of the snapshot's source");
      const result = await outcome(
        run.controller.deleteVolume({ volumeId: source.volumeId, secrets: run.secrets("DeleteVolume") }, run.call()),
      );
      if (!result.ok) {
        verify(
          result.code === Code.FailedPrecondition,
          `DeleteVolume of a volume with snapshots: expected OK or FAILED_PRECONDITION, got ${describeOutcome(result)}`,
        );
        run.step("ValidateVolumeCapabilities of the volume that was not deleted");
        await expectOk(
          "ValidateVolumeCapabilities after a refused DeleteVolume",
          run.controller.validateVolumeCapabilities(
            { volumeId: source.volumeId, volumeCapabilities: [run.mountCapability()], secrets: run.secrets("ValidateVolumeCapabilities") },
            run.call(),
          ),
        );
        run.note("the driver does not delete volumes that have snapshots (FAILED_PRECONDITION)");
        // The snapshot must go first for the cleanup to delete the volume.
        await run.deleteSnapshot(snapshot.snapshotId);
        return;
      }
      run.cleanup.release(`volume:${source.volumeId}`);
      if (run.hasControllerCap(ControllerCap.LIST_SNAPSHOTS)) {
        run.step("ListSnapshots by snapshot_id");
        const listed = await expectOk(
          "ListSnapshots by snapshot_id",
          run.controller.listSnapshots({ snapshotId: snapshot.snapshotId, secrets: run.secrets("ListSnapshots") }, run.call()),
        );
        verify(listed.entries.length === 1, `the snapshot of a deleted volume is no longer listed (${listed.entries.length} entries)`);
      }
      await createFromSource(
        run,
        run.volumeRequest(run.uniqueName("orphanrestore"), "mount", snapshotSource(snapshot.snapshotId)),
        "CreateVolume from the snapshot of a deleted volume",
      );
    },
  },
  {
    id: "clone.from-volume",
    group,
    title: "CreateVolume from a volume (clone) creates a volume at least as large as the source, idempotently",
    level: "MUST",
    rule: "Plugins reporting CLONE_VOLUME MUST support creating a volume from another volume",
    skipUnless: needClone,
    async run(run) {
      const source = await run.createTestVolume("clonesrc");
      const clone = await createFromSource(
        run,
        run.volumeRequest(run.uniqueName("clone"), "mount", volumeSource(source.volumeId)),
        "CreateVolume from the volume",
      );
      verify(
        clone.capacityBytes === 0n || clone.capacityBytes >= source.capacityBytes,
        `the clone has ${clone.capacityBytes} bytes, less than its source's ${source.capacityBytes}`,
      );
      verify(clone.volumeId !== source.volumeId, "the clone has the source's volume_id");
    },
  },
  {
    id: "clone.smaller",
    group,
    title: "CreateVolume from a volume with a limit below the source's size fails with OUT_OF_RANGE",
    level: "MUST",
    rule: "Unsupported capacity_range: OUT_OF_RANGE (a clone smaller than its source)",
    skipUnless: needClone,
    async run(run) {
      const source = await run.createTestVolume("clonesrc");
      const size = source.capacityBytes > 0n ? source.capacityBytes : run.options.testVolumeSize;
      const limit = size / 2n;
      await expectCreateRefused(
        run,
        `CreateVolume from a ${size}-byte volume with limit_bytes ${limit}`,
        run.volumeRequest(run.uniqueName("clonesmall"), "mount", {
          ...volumeSource(source.volumeId),
          capacityRange: { requiredBytes: limit, limitBytes: limit },
        }),
        Code.OutOfRange,
      );
    },
  },
];
