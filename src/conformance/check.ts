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

/** A check's verdict: the driver broke the rule. */
export class CheckFailure extends Error {
  override readonly name = "CheckFailure";
}

/** The check cannot run against this driver or configuration. */
export class CheckSkipped extends Error {
  override readonly name = "CheckSkipped";
}

export function fail(message: string): never {
  throw new CheckFailure(message);
}

export function skip(reason: string): never {
  throw new CheckSkipped(reason);
}

/** Fail with `message` unless `condition` holds. */
export function verify(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}
