import type { Topology as CsiTopology, TopologyRequirement, VolumeContentSource } from "../gen/csi/v1/csi_pb.js";
import type { ContentSource, StringMap, Topology } from "../backend/backend.js";
import { InvalidArgument, messagePart, type MessagePart } from "../csi/errors.js";

/**
 * Field checks every controller RPC makes before it looks anything up, with
 * the limits of the CSI spec ("Size Limits", names' banned characters). Each
 * failure is INVALID_ARGUMENT with a message that says what to fix.
 */

/** CSI's limit for a string field that does not set its own. */
export const MAX_STRING_BYTES = 128;
/** node_id overrides the general limit (NodeGetInfoResponse: at most 256 bytes). */
export const MAX_NODE_ID_BYTES = 256;
const MAX_MAP_BYTES = 4096;
/** Control characters other than the usual whitespace (CSI, CreateVolumeRequest.name). */
const BANNED_NAME_CHARACTERS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/u;

/** What is wrong with the size of a string field, or undefined when it is within `limit` bytes. */
export function stringSizeProblem(value: string, field: string, limit = MAX_STRING_BYTES): MessagePart | undefined {
  const bytes = Buffer.byteLength(value, "utf8");
  return bytes > limit ? messagePart("%s is %d bytes long; CSI limits it to %d bytes", field, bytes, limit) : undefined;
}

/** A string field within CSI's size limit (128 bytes unless the field sets another). */
export function checkStringSize(value: string, field: string, limit = MAX_STRING_BYTES): string {
  const problem = stringSizeProblem(value, field, limit);
  if (problem !== undefined) throw InvalidArgument("%s", problem);
  return value;
}

/** A REQUIRED string field; `hint` tells the caller what to put there. */
export function requireString(value: string, field: string, hint: string, limit = MAX_STRING_BYTES): string {
  if (value === "") throw InvalidArgument("%s is required: %s", field, hint);
  return checkStringSize(value, field, limit);
}

/** A CO-chosen name (volume or snapshot): required, at most 128 bytes, no banned control characters. */
export function requireName(value: string, field: string): string {
  requireString(value, field, "the CO's idempotency name for the object");
  const banned = BANNED_NAME_CHARACTERS.exec(value);
  if (banned) {
    const code = banned[0].codePointAt(0) ?? 0;
    throw InvalidArgument(
      "%s contains the control character U+%s, which CSI does not allow in names",
      field,
      code.toString(16).toUpperCase().padStart(4, "0"),
    );
  }
  return value;
}

/** A map<string,string> within CSI's 4 KiB limit. Values are never echoed: the map may hold secrets. */
export function checkMap(map: StringMap, field: string): StringMap {
  let bytes = 0;
  for (const [key, value] of Object.entries(map)) bytes += Buffer.byteLength(key, "utf8") + Buffer.byteLength(value, "utf8");
  if (bytes > MAX_MAP_BYTES) throw InvalidArgument("%s holds %d bytes of keys and values; CSI limits maps to 4 KiB", field, bytes);
  return map;
}

/** max_entries: 0 means no limit; negative is INVALID_ARGUMENT. */
export function checkMaxEntries(maxEntries: number): number {
  if (maxEntries < 0) throw InvalidArgument("max_entries must not be negative (got %d); use 0 for no limit", maxEntries);
  return maxEntries;
}

/** The backend's view of a volume_content_source; undefined when the request has none. */
export function contentSourceOf(source: VolumeContentSource | undefined): ContentSource | undefined {
  if (source === undefined) return undefined;
  switch (source.type.case) {
    case "snapshot":
      return {
        kind: "snapshot",
        id: requireString(source.type.value.snapshotId, "volume_content_source.snapshot.snapshot_id", "name the snapshot to restore"),
      };
    case "volume":
      return {
        kind: "volume",
        id: requireString(source.type.value.volumeId, "volume_content_source.volume.volume_id", "name the volume to clone"),
      };
    case undefined:
      throw InvalidArgument("volume_content_source is set but names neither a snapshot nor a volume");
  }
}

function topologyOf(topology: CsiTopology, field: string): Topology {
  checkMap(topology.segments, `${field}.segments`);
  if (Object.keys(topology.segments).length === 0)
    throw InvalidArgument("%s has no segments: give at least one topology key and value", field);
  return topology.segments;
}

export interface TopologyConstraints {
  readonly requisite: readonly Topology[];
  readonly preferred: readonly Topology[];
}

/** accessibility_requirements: when present, requisite or preferred (or both) must be given. */
export function topologyConstraintsOf(requirement: TopologyRequirement | undefined): TopologyConstraints {
  if (requirement === undefined) return { requisite: [], preferred: [] };
  if (requirement.requisite.length === 0 && requirement.preferred.length === 0) {
    throw InvalidArgument("accessibility_requirements is set but lists neither requisite nor preferred topologies");
  }
  return {
    requisite: requirement.requisite.map((t, i) => topologyOf(t, `accessibility_requirements.requisite[${i}]`)),
    preferred: requirement.preferred.map((t, i) => topologyOf(t, `accessibility_requirements.preferred[${i}]`)),
  };
}

export function sameMap(a: StringMap, b: StringMap): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.prototype.hasOwnProperty.call(b, k) && b[k] === a[k]);
}

/** True when every segment of `wanted` is present, with the same value, in `offered`. */
export function topologyCovers(offered: Topology, wanted: Topology): boolean {
  return Object.entries(wanted).every(([key, value]) => offered[key] === value);
}
