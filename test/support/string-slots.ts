import { clone, create, ScalarType, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import { isReflectMessage, reflect, type ReflectList, type ReflectMap, type ReflectMessage } from "@bufbuild/protobuf/reflect";

/**
 * Every place a request can carry a string, found from the message
 * descriptors: string fields, elements of repeated strings, and keys and
 * values of maps, at any depth and in every oneof case. Tests use them to send
 * oversized or malformed strings to every field of every RPC without listing
 * the fields by hand, so a field added to the proto is covered at once.
 */
export interface StringSlot {
  /** Where the slot is, in proto field names: `volume_capabilities[0].mount.fs_type`, `parameters{key}`. */
  readonly path: string;
  /** The fields from the request down to the slot's own field. */
  readonly fields: readonly DescField[];
  /** For a map field: whether the slot is an entry's key or its value. */
  readonly part: "field" | "key" | "value";
}

const isString = (field: DescField) =>
  (field.fieldKind === "scalar" || (field.fieldKind === "list" && field.listKind === "scalar")) && field.scalar === ScalarType.STRING;

/** The string slots of a message type; message types already on the path are not entered again. */
export function stringSlots(desc: DescMessage, within: readonly DescField[] = [], seen: readonly string[] = []): StringSlot[] {
  const slots: StringSlot[] = [];
  const path = [...seen, desc.typeName];
  const prefix = within.length === 0 ? "" : `${pathOf(within)}.`;
  for (const field of desc.fields) {
    const fields = [...within, field];
    if (isString(field)) {
      slots.push({ path: `${prefix}${field.name}${field.fieldKind === "list" ? "[0]" : ""}`, fields, part: "field" });
    } else if (field.fieldKind === "map" && field.mapKind === "scalar" && field.scalar === ScalarType.STRING) {
      slots.push({ path: `${prefix}${field.name}{key}`, fields, part: "key" });
      slots.push({ path: `${prefix}${field.name}{value}`, fields, part: "value" });
    } else if (
      (field.fieldKind === "message" || (field.fieldKind === "list" && field.listKind === "message")) &&
      !path.includes(field.message.typeName)
    ) {
      slots.push(...stringSlots(field.message, fields, path));
    }
  }
  return slots;
}

function pathOf(fields: readonly DescField[]): string {
  return fields.map((f) => `${f.name}${f.fieldKind === "list" ? "[0]" : ""}`).join(".");
}

/** The message held by a singular or oneof message field, set on the parent if it was not. */
function childMessage(parent: ReflectMessage, field: DescField): ReflectMessage {
  if (field.fieldKind === "message") {
    const child = parent.get(field);
    if (!parent.isSet(field)) parent.set(field, child);
    return child;
  }
  if (field.fieldKind === "list" && field.listKind === "message") {
    const list = parent.get(field) as ReflectList<ReflectMessage>;
    if (list.size === 0) list.add(reflect(field.message));
    const first = list.get(0);
    if (first === undefined || !isReflectMessage(first)) throw new Error(`${field.name}[0] is not a message`);
    return first;
  }
  throw new Error(`${field.name} does not hold a message`);
}

/**
 * Put `value` into one slot of `message` (the first list element, an entry of
 * the map with key "k" or value "v"), creating the messages on the way and
 * switching a oneof to the slot's case.
 */
export function fillSlot<Desc extends DescMessage>(desc: Desc, message: MessageShape<Desc>, slot: StringSlot, value: string): void {
  let target = reflect(desc, message);
  for (const field of slot.fields.slice(0, -1)) target = childMessage(target, field);
  const field = slot.fields[slot.fields.length - 1];
  if (field === undefined) throw new Error("a slot names at least one field");
  if (field.fieldKind === "scalar") {
    target.set(field, value);
  } else if (field.fieldKind === "list") {
    const list = target.get(field) as ReflectList<string>;
    if (list.size === 0) list.add(value);
    else list.set(0, value);
  } else if (field.fieldKind === "map") {
    const map = target.get(field) as ReflectMap<string, string>;
    if (slot.part === "key") map.set(value, "v");
    else map.set("k", value);
  } else {
    throw new Error(`${slot.path} is not a string slot`);
  }
}

/** A request of `desc` with every string slot set to `value` (for a oneof, its last case that holds strings). */
export function filledRequest<Desc extends DescMessage>(desc: Desc, value: string): MessageShape<Desc> {
  const message = create(desc);
  for (const slot of stringSlots(desc)) fillSlot(desc, message, slot, value);
  return message;
}

/** The request `base` with one slot set to `value`; `base` is left as it is. */
export function withSlot<Desc extends DescMessage>(
  desc: Desc,
  base: MessageShape<Desc>,
  slot: StringSlot,
  value: string,
): MessageShape<Desc> {
  const message = clone(desc, base);
  fillSlot(desc, message, slot, value);
  return message;
}
