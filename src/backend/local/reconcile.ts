import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../../log/logger.js";
import { loopDevicesFor, refreshLoopCapacity } from "../../mounter/loop.js";
import { fsyncPath, growFile, removeIfExists, statIfExists } from "./durable-files.js";
import { thawAfterCrash } from "./frozen-source.js";
import { isLocalId, PARTIAL_SUFFIX, snapshotImagePath, snapshotsDir, volumeImagePath, volumesDir } from "./layout.js";
import type { StateStore } from "./state-store.js";

export interface ReconcileReport {
  /** Volumes and snapshots whose creation was interrupted, removed. */
  readonly rolledBack: string[];
  /** Deletions that were interrupted, finished. */
  readonly finishedDeletions: string[];
  /** Volumes whose image was grown but whose new size was not recorded: the size is adopted. */
  readonly adoptedSizes: string[];
  /** Ready volumes or snapshots whose image is missing (reported abnormal, never silently dropped). */
  readonly missingImages: string[];
  /** Partial images no record accounts for, removed. */
  readonly removedPartials: string[];
  /** Image files no record mentions: not ours to delete, left alone and reported. */
  readonly unknownFiles: string[];
}

async function removeImage(path: string): Promise<void> {
  await removeIfExists(path);
  await removeIfExists(`${path}${PARTIAL_SUFFIX}`);
}

/**
 * Bring the data dir back to a consistent state after a crash, before any
 * request is served. Creations in progress are rolled back (their files
 * removed, then their records), deletions in progress are finished,
 * filesystems left frozen by an interrupted copy are thawed, and grown images
 * have their size recorded. Files are handled before records, so a crash
 * during reconciliation is reconciled by the next start.
 */
export async function reconcile(store: StateStore, dataDir: string, log: Logger): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    rolledBack: [],
    finishedDeletions: [],
    adoptedSizes: [],
    missingImages: [],
    removedPartials: [],
    unknownFiles: [],
  };
  const { volumes, snapshots } = store.state;

  for (const snapshot of Object.values(snapshots)) {
    if (snapshot.phase === "ready") {
      if (!(await statIfExists(snapshotImagePath(dataDir, snapshot.id)))) report.missingImages.push(snapshot.id);
      continue;
    }
    const source = volumes[snapshot.sourceVolumeId];
    if (source) for (const mount of snapshot.frozenMounts) await thawAfterCrash(mount, volumeImagePath(dataDir, source.id), log);
    await removeImage(snapshotImagePath(dataDir, snapshot.id));
    (snapshot.phase === "creating" ? report.rolledBack : report.finishedDeletions).push(snapshot.id);
  }

  const grown = new Map<string, number>();
  for (const volume of Object.values(volumes)) {
    const image = volumeImagePath(dataDir, volume.id);
    if (volume.phase !== "ready") {
      const source = volume.source?.kind === "volume" ? volumes[volume.source.id] : undefined;
      if (source) for (const mount of volume.frozenMounts) await thawAfterCrash(mount, volumeImagePath(dataDir, source.id), log);
      await removeImage(image);
      (volume.phase === "creating" ? report.rolledBack : report.finishedDeletions).push(volume.id);
      continue;
    }
    const stats = await statIfExists(image);
    if (!stats) {
      report.missingImages.push(volume.id);
    } else if (stats.size > volume.sizeBytes) {
      // Grown by an expansion that crashed before recording it: keep the larger size, never lose data.
      grown.set(volume.id, stats.size);
      for (const device of await loopDevicesFor(image)) await refreshLoopCapacity(device);
      report.adoptedSizes.push(volume.id);
    } else if (stats.size < volume.sizeBytes) {
      await growFile(image, volume.sizeBytes);
      report.adoptedSizes.push(volume.id);
    }
  }
  await fsyncPath(volumesDir(dataDir));
  await fsyncPath(snapshotsDir(dataDir));

  // A group snapshot being created or deleted: its members were in the same phase and are handled above.
  const unfinishedGroups = Object.values(store.state.groups ?? {}).filter((g) => g.phase !== "ready");
  for (const group of unfinishedGroups) (group.phase === "creating" ? report.rolledBack : report.finishedDeletions).push(group.id);

  await store.update((draft) => {
    for (const id of [...report.rolledBack, ...report.finishedDeletions]) {
      delete draft.volumes[id];
      delete draft.snapshots[id];
      if (draft.groups) delete draft.groups[id];
    }
    for (const [id, sizeBytes] of grown) {
      const volume = draft.volumes[id];
      if (volume) draft.volumes[id] = { ...volume, sizeBytes };
    }
  });

  // Files no record accounts for. Partial images are ours by their name and now certainly garbage;
  // complete images without a record are not something this driver ever leaves, so they are not touched.
  const known = new Set([...Object.keys(store.state.volumes), ...Object.keys(store.state.snapshots)]);
  for (const dir of [volumesDir(dataDir), snapshotsDir(dataDir)]) {
    for (const name of await readdir(dir)) {
      const path = join(dir, name);
      if (name.endsWith(`.img${PARTIAL_SUFFIX}`) && isLocalId(name.slice(0, -`.img${PARTIAL_SUFFIX}`.length))) {
        await removeIfExists(path);
        report.removedPartials.push(path);
      } else if (!(name.endsWith(".img") && known.has(name.slice(0, -".img".length)))) {
        report.unknownFiles.push(path);
      }
    }
  }

  if (report.unknownFiles.length > 0)
    log.warn({ files: report.unknownFiles }, "files in the data dir that no volume or snapshot record mentions; left in place");
  if (report.missingImages.length > 0) log.error({ ids: report.missingImages }, "volumes or snapshots whose image file is missing");
  const changed = report.rolledBack.length + report.finishedDeletions.length + report.adoptedSizes.length + report.removedPartials.length;
  if (changed > 0) {
    log.info(
      {
        rolledBack: report.rolledBack,
        finishedDeletions: report.finishedDeletions,
        adoptedSizes: report.adoptedSizes,
        removedPartials: report.removedPartials,
      },
      "reconciled the data dir after an unclean stop",
    );
  }
  return report;
}
