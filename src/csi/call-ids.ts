import { hasOption, ScalarType, type DescField, type DescMessage, type Message } from "@bufbuild/protobuf";
import { csi_secret } from "../gen/csi/v1/csi_pb.js";

/**
 * The ids a request names, for the one log line of its call: found by field
 * name in the request's descriptor, so every RPC (present and future) gets
 * them without a list per method. Only these string fields are read, never a
 * field marked csi_secret, and every value is cut to a bounded length.
 */
const ID_KEYS: Readonly<Record<string, string>> = {
  name: "name",
  volume_id: "volumeId",
  snapshot_id: "snapshotId",
  node_id: "nodeId",
  source_volume_id: "sourceVolumeId",
  group_snapshot_id: "groupSnapshotId",
  base_snapshot_id: "baseSnapshotId",
  target_snapshot_id: "targetSnapshotId",
};

/** Inside volume_content_source (snapshot.snapshot_id or volume.volume_id) the ids are the source's. */
const SOURCE_FIELD = "volume_content_source";
const SOURCE_KEYS: Readonly<Record<string, string>> = { volume_id: "sourceVolumeId", snapshot_id: "sourceSnapshotId" };

/** Longest value logged; CSI ids and names are at most 128 bytes when valid. */
export const MAX_LOGGED_ID_LENGTH = 128;

interface IdField {
  /** Message fields leading to the string field, then the string field. */
  readonly path: readonly DescField[];
  readonly key: string;
}

const plans = new WeakMap<DescMessage, readonly IdField[]>();

function planFor(desc: DescMessage): readonly IdField[] {
  let plan = plans.get(desc);
  if (plan) return plan;
  const found: IdField[] = [];
  const visit = (message: DescMessage, path: readonly DescField[], keys: Readonly<Record<string, string>>, depth: number) => {
    for (const field of message.fields) {
      if (hasOption(field, csi_secret)) continue;
      if (field.fieldKind === "scalar" && field.scalar === ScalarType.STRING && field.name in keys) {
        found.push({ path: [...path, field], key: keys[field.name] as string });
      } else if (field.fieldKind === "message" && depth < 2 && (depth > 0 || field.name === SOURCE_FIELD)) {
        visit(field.message, [...path, field], SOURCE_KEYS, depth + 1);
      }
    }
  };
  visit(desc, [], ID_KEYS, 0);
  plan = found;
  plans.set(desc, plan);
  return plan;
}

/** Cut a value to MAX_LOGGED_ID_LENGTH characters, saying how long it was. */
export function boundForLog(value: string): string {
  return value.length <= MAX_LOGGED_ID_LENGTH ? value : `${value.slice(0, MAX_LOGGED_ID_LENGTH)}...(${value.length} chars)`;
}

/** A field's value in a message (protobuf-es messages are plain objects; a oneof member sits under its oneof). */
function fieldValue(message: unknown, field: DescField): unknown {
  if (typeof message !== "object" || message === null) return undefined;
  const object = message as Record<string, unknown>;
  if (field.oneof === undefined) return object[field.localName];
  const chosen = object[field.oneof.localName] as { case?: unknown; value?: unknown } | undefined;
  return chosen?.case === field.localName ? chosen.value : undefined;
}

/** The non-empty ids and name of a request, keyed as in the driver's other log lines (volumeId, nodeId, ...). */
export function callIds(desc: DescMessage, request: Message): Record<string, string> {
  const ids: Record<string, string> = {};
  for (const { path, key } of planFor(desc)) {
    let value: unknown = request;
    for (const field of path) value = fieldValue(value, field);
    if (typeof value === "string" && value !== "") ids[key] = boundForLog(value);
  }
  return ids;
}
