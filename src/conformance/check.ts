import type { CheckRun } from "./context.js";
import type { DriverProfile } from "./profile.js";

/**
 * How binding the rule a check encodes is: a MUST (or SHALL / REQUIRED) of the
 * spec, or a SHOULD. Both fail the run by default; with `--lenient` a failed
 * SHOULD check is reported as a warning instead.
 */
export type RuleLevel = "MUST" | "SHOULD";

/** The group a check is reported under. */
export type CheckGroup =
  | "Identity"
  | "Capabilities"
  | "CreateVolume"
  | "DeleteVolume"
  | "ValidateVolumeCapabilities"
  | "ControllerPublishVolume"
  | "ControllerUnpublishVolume"
  | "ListVolumes"
  | "GetCapacity"
  | "ControllerGetVolume"
  | "ControllerModifyVolume"
  | "Snapshots"
  | "ListSnapshots"
  | "SnapshotMetadata"
  | "GroupSnapshots"
  | "ControllerExpandVolume"
  | "NodeGetInfo"
  | "NodeStageVolume"
  | "NodeUnstageVolume"
  | "NodePublishVolume"
  | "NodeUnpublishVolume"
  | "NodeGetVolumeStats"
  | "NodeExpandVolume"
  | "Lifecycle";

export interface Check {
  /** Stable identifier, e.g. `create-volume.missing-name`; `--filter` matches it and the title. */
  readonly id: string;
  readonly group: CheckGroup;
  /** What is verified, as a sentence. */
  readonly title: string;
  readonly level: RuleLevel;
  /** The spec rule, quoted or paraphrased, shown next to a failure. */
  readonly rule: string;
  /** A reason to skip the check for this driver (an unadvertised capability), or undefined to run it. */
  readonly skipUnless?: (profile: DriverProfile) => string | undefined;
  run(run: CheckRun): Promise<void>;
}

export { CheckFailure, CheckSkipped, fail, skip, verify } from "./verdict.js";
