import { hasOption, toJson, type DescField, type DescMessage, type JsonValue, type Message } from "@bufbuild/protobuf";
import { csi_secret } from "../gen/csi/v1/csi_pb.js";

export const REDACTED = "***stripped***";

const secretPlans = new WeakMap<DescMessage, RedactionPlan | null>();

interface RedactionPlan {
  /** Fields marked csi_secret: their values are replaced as a whole. */
  readonly secret: readonly DescField[];
  /** Fields that hold messages which themselves (transitively) carry secrets. */
  readonly nested: readonly { field: DescField; plan: RedactionPlan }[];
}

/**
 * Which fields of a message type must be hidden, found from the `csi_secret`
 * field option in the descriptor, following nested, repeated and map-valued
 * messages. Computed once per message type.
 */
function planFor(desc: DescMessage, visiting = new Set<DescMessage>()): RedactionPlan | null {
  const cached = secretPlans.get(desc);
  if (cached !== undefined) return cached;
  if (visiting.has(desc)) return null; // recursive types: the outer visit covers them
  visiting.add(desc);
  const secret: DescField[] = [];
  const nested: { field: DescField; plan: RedactionPlan }[] = [];
  for (const field of desc.fields) {
    if (hasOption(field, csi_secret)) {
      secret.push(field);
      continue;
    }
    const child = messageOf(field);
    if (child) {
      const plan = planFor(child, visiting);
      if (plan) nested.push({ field, plan });
    }
  }
  visiting.delete(desc);
  const plan = secret.length > 0 || nested.length > 0 ? { secret, nested } : null;
  secretPlans.set(desc, plan);
  return plan;
}

function messageOf(field: DescField): DescMessage | undefined {
  switch (field.fieldKind) {
    case "message":
      return field.message;
    case "list":
      return field.listKind === "message" ? field.message : undefined;
    case "map":
      return field.mapKind === "message" ? field.message : undefined;
    default:
      return undefined;
  }
}

function applyPlan(json: JsonValue, plan: RedactionPlan, field?: DescField): void {
  if (json === null || typeof json !== "object") return;
  if (Array.isArray(json)) {
    for (const item of json) applyPlan(item, plan);
    return;
  }
  if (field?.fieldKind === "map") {
    for (const value of Object.values(json)) applyPlan(value, plan);
    return;
  }
  for (const f of plan.secret) {
    if (f.jsonName in json) json[f.jsonName] = REDACTED;
  }
  for (const { field: f, plan: child } of plan.nested) {
    const value = json[f.jsonName];
    if (value !== undefined) applyPlan(value, child, f);
  }
}

/**
 * A loggable JSON rendering of a message in which every field carrying the
 * `csi_secret` option, at any depth, is replaced by a fixed marker.
 */
export function redactedJson(desc: DescMessage, message: Message): JsonValue {
  const json = toJson(desc, message, { alwaysEmitImplicit: false });
  const plan = planFor(desc);
  if (plan) applyPlan(json, plan);
  return json;
}

/** True when a message type can carry secrets anywhere inside it. */
export function carriesSecrets(desc: DescMessage): boolean {
  return planFor(desc) !== null;
}
