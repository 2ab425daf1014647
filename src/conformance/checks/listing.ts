import { Code } from "@connectrpc/connect";
import { verify, type Check } from "../check.js";
import type { CheckRun } from "../context.js";
import { expectCode, expectOk } from "../expect.js";
import { ControllerCap, needs } from "../profile.js";
import { identifierProblem } from "../spec-rules.js";
import { snapshotProblems, unknownSnapshotId, unknownVolumeId } from "./shared.js";

const needList = needs.controller(ControllerCap.LIST_VOLUMES);
const needListCreate = needs.controller(ControllerCap.LIST_VOLUMES, ControllerCap.CREATE_DELETE_VOLUME);
const needListSnapshots = needs.controller(ControllerCap.LIST_SNAPSHOTS);
const needListSnapshotsCreate = needs.controller(
  ControllerCap.LIST_SNAPSHOTS,
  ControllerCap.CREATE_DELETE_SNAPSHOT,
  ControllerCap.CREATE_DELETE_VOLUME,
);

/** How many items the paging checks make sure exist, and the page size they use. */
const PAGING_ITEMS = 5;
const PAGE_SIZE = 2;

function duplicatesOf(ids: readonly string[]): string[] {
  return [...new Set(ids.filter((id, i) => ids.indexOf(id) !== i))];
}

/** Make sure at least PAGING_ITEMS volumes exist; returns the ids this check created. */
async function ensureVolumes(run: CheckRun): Promise<string[]> {
  const { entries } = await run.listAllVolumes();
  const created: string[] = [];
  for (let i = entries.length; i < PAGING_ITEMS; i++) {
    created.push((await run.createTestVolume(`page${i}`)).volumeId);
  }
  // Always have some of our own, to check they are all listed.
  if (created.length === 0) created.push((await run.createTestVolume("page")).volumeId);
  return created;
}

export const listVolumesChecks: Check[] = [
  {
    id: "list-volumes.entries",
    group: "ListVolumes",
    title: "ListVolumes returns well-formed entries",
    level: "MUST",
    rule: "Entry.volume is REQUIRED with a volume_id; Entry.status MUST be specified with LIST_VOLUMES_PUBLISHED_NODES; volume_condition MUST be specified with VOLUME_CONDITION",
    skipUnless: needList,
    async run(run) {
      const { entries } = await run.listAllVolumes();
      const published = run.hasControllerCap(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES);
      const condition = run.hasControllerCap(ControllerCap.VOLUME_CONDITION);
      for (const entry of entries) {
        verify(entry.volume !== undefined, "an entry has no volume (REQUIRED)");
        const problem = identifierProblem("volume_id", entry.volume.volumeId);
        verify(problem === undefined, `an entry's ${problem}`);
        if (published)
          verify(
            entry.status !== undefined,
            `the entry of ${entry.volume.volumeId} has no status although LIST_VOLUMES_PUBLISHED_NODES is advertised`,
          );
        if (condition)
          verify(
            entry.status?.volumeCondition !== undefined,
            `the entry of ${entry.volume.volumeId} has no volume_condition although VOLUME_CONDITION is advertised`,
          );
      }
      const dup = duplicatesOf(entries.map((e) => e.volume?.volumeId ?? ""));
      verify(dup.length === 0, `volumes listed more than once: ${dup.join(", ")}`);
    },
  },
  {
    id: "list-volumes.bad-token",
    group: "ListVolumes",
    title: "ListVolumes with an invalid starting_token fails with ABORTED",
    level: "MUST",
    rule: "Invalid starting_token: 10 ABORTED",
    skipUnless: needList,
    async run(run) {
      await expectCode(
        'ListVolumes with starting_token "csi-conformance-invalid-token"',
        run.controller.listVolumes({ startingToken: "csi-conformance-invalid-token" }, run.call()),
        Code.Aborted,
      );
    },
  },
  {
    id: "list-volumes.negative-max-entries",
    group: "ListVolumes",
    title: "ListVolumes with a negative max_entries fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "max_entries: the value of this field MUST NOT be negative (an invalid field is INVALID_ARGUMENT)",
    skipUnless: needList,
    async run(run) {
      await expectCode("ListVolumes with max_entries -1", run.controller.listVolumes({ maxEntries: -1 }, run.call()), Code.InvalidArgument);
    },
  },
  {
    id: "list-volumes.create-delete",
    group: "ListVolumes",
    title: "ListVolumes lists a new volume and stops listing it once deleted",
    level: "MUST",
    rule: "The Plugin SHALL return the information about all the volumes that it knows about",
    skipUnless: needListCreate,
    async run(run) {
      const volume = await run.createTestVolume("listed");
      run.step("ListVolumes after CreateVolume");
      const after = await run.listAllVolumes();
      const entry = after.entries.find((e) => e.volume?.volumeId === volume.volumeId);
      verify(entry !== undefined, `ListVolumes does not list new volume ${volume.volumeId}`);
      verify(
        entry.volume?.capacityBytes === volume.capacityBytes,
        `ListVolumes reports capacity ${entry.volume?.capacityBytes}, CreateVolume ${volume.capacityBytes}`,
      );
      run.step("DeleteVolume");
      await run.deleteVolume(volume.volumeId);
      run.step("ListVolumes after DeleteVolume");
      const gone = await run.listAllVolumes();
      verify(
        !gone.entries.some((e) => e.volume?.volumeId === volume.volumeId),
        `ListVolumes still lists deleted volume ${volume.volumeId}`,
      );
    },
  },
  {
    id: "list-volumes.paging",
    group: "ListVolumes",
    title: "ListVolumes pages with max_entries and next_token until exhaustion, each volume exactly once",
    level: "MUST",
    rule: "The Plugin MUST NOT return more entries than max_entries, and MUST set next_token when there are more",
    skipUnless: needListCreate,
    async run(run) {
      run.step(`make sure at least ${PAGING_ITEMS} volumes exist`);
      const ours = await ensureVolumes(run);
      run.step("ListVolumes without max_entries");
      const all = await run.listAllVolumes();
      run.step(`ListVolumes with max_entries ${PAGE_SIZE}, following next_token`);
      const paged = await run.listAllVolumes(PAGE_SIZE);
      const ids = paged.entries.map((e) => e.volume?.volumeId ?? "");
      const dup = duplicatesOf(ids);
      verify(dup.length === 0, `paging returned volumes more than once: ${dup.join(", ")}`);
      const missing = ours.filter((id) => !ids.includes(id));
      verify(missing.length === 0, `paging never returned volumes ${missing.join(", ")}`);
      const unpaged = new Set(all.entries.map((e) => e.volume?.volumeId ?? ""));
      const lost = [...unpaged].filter((id) => !ids.includes(id));
      verify(lost.length === 0, `volumes listed without paging but not with it: ${lost.join(", ")}`);
      verify(
        paged.pages.length >= Math.ceil(unpaged.size / PAGE_SIZE),
        `${unpaged.size} volumes came in only ${paged.pages.length} pages of at most ${PAGE_SIZE}`,
      );
      run.step(`ListVolumes with max_entries ${unpaged.size + 10}`);
      const whole = await expectOk(
        "ListVolumes with a large max_entries",
        run.controller.listVolumes({ maxEntries: unpaged.size + 10 }, run.call()),
      );
      verify(
        whole.nextToken === "",
        `with max_entries above the number of volumes, next_token is ${JSON.stringify(whole.nextToken)} instead of empty`,
      );
    },
  },
  {
    id: "list-volumes.stable-order",
    group: "ListVolumes",
    title: "ListVolumes paging returns the same order when nothing changes",
    level: "SHOULD",
    rule: "Paging resumes where the previous page ended: without concurrent changes, a CO should see each volume once and in a stable order",
    skipUnless: needListCreate,
    async run(run) {
      await ensureVolumes(run);
      run.step("page through ListVolumes twice");
      const first = (await run.listAllVolumes(PAGE_SIZE)).entries.map((e) => e.volume?.volumeId ?? "");
      const second = (await run.listAllVolumes(PAGE_SIZE)).entries.map((e) => e.volume?.volumeId ?? "");
      verify(
        first.join(",") === second.join(","),
        `two paginations returned different orders: [${first.join(", ")}] and [${second.join(", ")}]`,
      );
    },
  },
];

export const listSnapshotsChecks: Check[] = [
  {
    id: "list-snapshots.entries",
    group: "ListSnapshots",
    title: "ListSnapshots returns well-formed entries",
    level: "MUST",
    rule: "Snapshot: snapshot_id, source_volume_id and creation_time are REQUIRED",
    skipUnless: needListSnapshots,
    async run(run) {
      const { entries } = await run.listAllSnapshots();
      for (const entry of entries) {
        verify(entry.snapshot !== undefined, "an entry has no snapshot");
        const problems = snapshotProblems(entry.snapshot, undefined);
        verify(problems.length === 0, `snapshot ${entry.snapshot.snapshotId}: ${problems.join("; ")}`);
      }
      const dup = duplicatesOf(entries.map((e) => e.snapshot?.snapshotId ?? ""));
      verify(dup.length === 0, `snapshots listed more than once: ${dup.join(", ")}`);
    },
  },
  {
    id: "list-snapshots.bad-token",
    group: "ListSnapshots",
    title: "ListSnapshots with an invalid starting_token fails with ABORTED",
    level: "MUST",
    rule: "Invalid starting_token: 10 ABORTED",
    skipUnless: needListSnapshots,
    async run(run) {
      await expectCode(
        'ListSnapshots with starting_token "csi-conformance-invalid-token"',
        run.controller.listSnapshots({ startingToken: "csi-conformance-invalid-token", secrets: run.secrets("ListSnapshots") }, run.call()),
        Code.Aborted,
      );
    },
  },
  {
    id: "list-snapshots.negative-max-entries",
    group: "ListSnapshots",
    title: "ListSnapshots with a negative max_entries fails with INVALID_ARGUMENT",
    level: "MUST",
    rule: "max_entries: the value of this field MUST NOT be negative (an invalid field is INVALID_ARGUMENT)",
    skipUnless: needListSnapshots,
    async run(run) {
      await expectCode(
        "ListSnapshots with max_entries -1",
        run.controller.listSnapshots({ maxEntries: -1, secrets: run.secrets("ListSnapshots") }, run.call()),
        Code.InvalidArgument,
      );
    },
  },
  {
    id: "list-snapshots.unknown-filters",
    group: "ListSnapshots",
    title: "ListSnapshots filtered by an unknown snapshot_id or source_volume_id returns no entries",
    level: "MUST",
    rule: "ListSnapshots returns the snapshots within the given parameters (none match); its only error is ABORTED for a bad token",
    skipUnless: needListSnapshots,
    async run(run) {
      run.step("ListSnapshots by an unknown snapshot_id");
      const byId = await expectOk(
        "ListSnapshots by an unknown snapshot_id",
        run.controller.listSnapshots({ snapshotId: unknownSnapshotId(), secrets: run.secrets("ListSnapshots") }, run.call()),
      );
      verify(byId.entries.length === 0, `ListSnapshots by an unknown snapshot_id returned ${byId.entries.length} entries`);
      run.step("ListSnapshots by an unknown source_volume_id");
      const bySource = await expectOk(
        "ListSnapshots by an unknown source_volume_id",
        run.controller.listSnapshots({ sourceVolumeId: unknownVolumeId(), secrets: run.secrets("ListSnapshots") }, run.call()),
      );
      verify(bySource.entries.length === 0, `ListSnapshots by an unknown source_volume_id returned ${bySource.entries.length} entries`);
    },
  },
  {
    id: "list-snapshots.filters",
    group: "ListSnapshots",
    title: "ListSnapshots filters by snapshot_id and by source_volume_id",
    level: "MUST",
    rule: "snapshot_id lists only that snapshot; source_volume_id lists snapshots by volume",
    skipUnless: needListSnapshotsCreate,
    async run(run) {
      const target = await run.createTestVolume("snapsrc");
      const other = await run.createTestVolume("snapother");
      run.step("CreateSnapshot of two volumes");
      const wanted = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), target.volumeId));
      const unrelated = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), other.volumeId));
      run.step("ListSnapshots by snapshot_id");
      const byId = await expectOk(
        "ListSnapshots by snapshot_id",
        run.controller.listSnapshots({ snapshotId: wanted.snapshotId, secrets: run.secrets("ListSnapshots") }, run.call()),
      );
      verify(byId.entries.length === 1, `ListSnapshots by snapshot_id returned ${byId.entries.length} entries, not 1`);
      verify(
        byId.entries[0]?.snapshot?.snapshotId === wanted.snapshotId,
        `ListSnapshots by snapshot_id returned ${byId.entries[0]?.snapshot?.snapshotId}`,
      );
      const problems = snapshotProblems(byId.entries[0].snapshot, target.volumeId);
      verify(problems.length === 0, problems.join("; "));
      run.step("ListSnapshots by source_volume_id");
      const bySource = await run.listAllSnapshots({ sourceVolumeId: target.volumeId });
      verify(
        bySource.entries.some((e) => e.snapshot?.snapshotId === wanted.snapshotId),
        `ListSnapshots by source_volume_id does not list ${wanted.snapshotId}`,
      );
      const foreign = bySource.entries.filter((e) => e.snapshot?.sourceVolumeId !== target.volumeId);
      verify(
        foreign.length === 0,
        `ListSnapshots by source_volume_id returned snapshots of other volumes: ${foreign.map((e) => e.snapshot?.snapshotId).join(", ")}`,
      );
      verify(
        !bySource.entries.some((e) => e.snapshot?.snapshotId === unrelated.snapshotId),
        "ListSnapshots by source_volume_id returned the other volume's snapshot",
      );
    },
  },
  {
    id: "list-snapshots.create-delete",
    group: "ListSnapshots",
    title: "ListSnapshots lists a new snapshot and stops listing it once deleted",
    level: "MUST",
    rule: "ListSnapshots SHALL return information about all snapshots on the storage system",
    skipUnless: needListSnapshotsCreate,
    async run(run) {
      const volume = await run.createTestVolume("snapsrc");
      run.step("CreateSnapshot");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("snap"), volume.volumeId));
      run.step("ListSnapshots");
      const listed = await run.listAllSnapshots();
      verify(
        listed.entries.some((e) => e.snapshot?.snapshotId === snapshot.snapshotId),
        `ListSnapshots does not list new snapshot ${snapshot.snapshotId}`,
      );
      run.step("DeleteSnapshot");
      await run.deleteSnapshot(snapshot.snapshotId);
      run.step("ListSnapshots after DeleteSnapshot");
      const after = await run.listAllSnapshots();
      verify(
        !after.entries.some((e) => e.snapshot?.snapshotId === snapshot.snapshotId),
        `ListSnapshots still lists deleted snapshot ${snapshot.snapshotId}`,
      );
    },
  },
  {
    id: "list-snapshots.paging",
    group: "ListSnapshots",
    title: "ListSnapshots pages with max_entries and next_token until exhaustion, each snapshot exactly once, filtered or not",
    level: "MUST",
    rule: "The Plugin MUST NOT return more entries than max_entries, and MUST set next_token when there are more",
    skipUnless: needListSnapshotsCreate,
    async run(run) {
      const volume = await run.createTestVolume("pagesrc");
      run.step(`CreateSnapshot ${PAGING_ITEMS} times`);
      const ours: string[] = [];
      for (let i = 0; i < PAGING_ITEMS; i++)
        ours.push((await run.createSnapshot(run.snapshotRequest(run.uniqueName(`page${i}`), volume.volumeId))).snapshotId);
      run.step("ListSnapshots without max_entries");
      const all = await run.listAllSnapshots();
      run.step(`ListSnapshots with max_entries ${PAGE_SIZE}`);
      const paged = await run.listAllSnapshots({ maxEntries: PAGE_SIZE });
      const ids = paged.entries.map((e) => e.snapshot?.snapshotId ?? "");
      const dup = duplicatesOf(ids);
      verify(dup.length === 0, `paging returned snapshots more than once: ${dup.join(", ")}`);
      const missing = ours.filter((id) => !ids.includes(id));
      verify(missing.length === 0, `paging never returned snapshots ${missing.join(", ")}`);
      const lost = all.entries.map((e) => e.snapshot?.snapshotId ?? "").filter((id) => !ids.includes(id));
      verify(lost.length === 0, `snapshots listed without paging but not with it: ${lost.join(", ")}`);
      run.step("ListSnapshots by source_volume_id with max_entries 1");
      const filtered = await run.listAllSnapshots({ sourceVolumeId: volume.volumeId, maxEntries: 1 });
      const filteredIds = filtered.entries.map((e) => e.snapshot?.snapshotId ?? "");
      verify(
        duplicatesOf(filteredIds).length === 0,
        `filtered paging returned snapshots more than once: ${duplicatesOf(filteredIds).join(", ")}`,
      );
      const filteredMissing = ours.filter((id) => !filteredIds.includes(id));
      verify(filteredMissing.length === 0, `filtered paging never returned snapshots ${filteredMissing.join(", ")}`);
      verify(
        filtered.entries.every((e) => e.snapshot?.sourceVolumeId === volume.volumeId),
        "filtered paging returned snapshots of other volumes",
      );
    },
  },
];
