import type { Check } from "../check.js";
import { capabilityChecks } from "./capabilities.js";
import { capacityChecks, getVolumeChecks, modifyVolumeChecks, validateChecks } from "./controller-queries.js";
import { controllerPublishChecks } from "./controller-publish.js";
import { expansionChecks } from "./expansion.js";
import { identityChecks } from "./identity.js";
import { lifecycleChecks } from "./lifecycle.js";
import { listSnapshotsChecks, listVolumesChecks } from "./listing.js";
import {
  nodeExpandChecks,
  nodeInfoChecks,
  nodePublishChecks,
  nodeStageChecks,
  nodeStatsChecks,
  nodeUnpublishChecks,
  nodeUnstageChecks,
} from "./node.js";
import { groupSnapshotChecks } from "./group-snapshots.js";
import { snapshotMetadataChecks } from "./snapshot-metadata.js";
import { snapshotChecks } from "./snapshots.js";
import { createVolumeChecks, deleteVolumeChecks } from "./volumes.js";

/** Every check, in run order: cheap argument checks of each service first, round trips last. */
export const allChecks: readonly Check[] = [
  ...identityChecks,
  ...capabilityChecks,
  ...nodeInfoChecks,
  ...createVolumeChecks,
  ...deleteVolumeChecks,
  ...validateChecks,
  ...controllerPublishChecks,
  ...listVolumesChecks,
  ...capacityChecks,
  ...getVolumeChecks,
  ...modifyVolumeChecks,
  ...snapshotChecks,
  ...listSnapshotsChecks,
  ...snapshotMetadataChecks,
  ...groupSnapshotChecks,
  ...expansionChecks,
  ...nodeStageChecks,
  ...nodeUnstageChecks,
  ...nodePublishChecks,
  ...nodeUnpublishChecks,
  ...nodeStatsChecks,
  ...nodeExpandChecks,
  ...lifecycleChecks,
];
