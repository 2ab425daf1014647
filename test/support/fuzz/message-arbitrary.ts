import {
  create,
  ScalarType,
  type DescField,
  type DescMessage,
  type DescOneof,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import fc from "fast-check";

/**
 * fast-check arbitraries for any protobuf message, built by walking its
 * descriptor: every field of every kind (scalars, enums, nested messages,
 * oneofs, repeated fields, maps) gets values chosen to break a server —
 * strings that are ids, names or paths with "..", NUL, unicode or far over the
 * spec's size limits; integers at and past their limits and negative; enum
 * numbers the schema does not know; repeated fields with duplicates.
 */

/** What the generated strings draw on, so some requests name real objects and real paths. */
export interface FuzzVocabulary {
  /** Directory every generated path starts in (paths may still climb out of it with ".."). */
  readonly pathRoot: string;
  /** Paths under `pathRoot` a request may use as they are (staging and target directories). */
  readonly paths: readonly string[];
  /** Existing volume, snapshot and group snapshot ids. */
  readonly ids: readonly string[];
  readonly nodeIds: readonly string[];
  /** A token in every generated file or directory name, so a leak outside `pathRoot` is recognisable. */
  readonly marker: string;
}

const EDGE_STRINGS = ["", ".", "..", "/", "../..", "\0", "a\0b", "%2e%2e", "\u202e", "\uffff", " ", "\n", "-", "--help", "*"];

function weirdString(): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.string({ maxLength: 24 }), weight: 4 },
    { arbitrary: fc.string({ unit: "binary", maxLength: 24 }), weight: 2 },
    { arbitrary: fc.constantFrom(...EDGE_STRINGS), weight: 3 },
    // Over the spec's 128-byte limit, in ASCII and in multi-byte characters.
    { arbitrary: fc.string({ minLength: 120, maxLength: 300 }), weight: 1 },
    { arbitrary: fc.string({ unit: "binary", minLength: 60, maxLength: 120 }), weight: 1 },
    // Far over any limit.
    { arbitrary: fc.integer({ min: 4_000, max: 70_000 }).map((n) => "x".repeat(n)), weight: 1 },
  );
}

function pathSegment(marker: string): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom("..", ".", "", "\0", `${marker}\0x`), weight: 3 },
    { arbitrary: fc.stringMatching(/^[a-z0-9]{1,10}$/).map((s) => `${marker}-${s}`), weight: 4 },
    { arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 12 }).map((s) => `${marker}${s.replaceAll("/", "")}`), weight: 1 },
    // NAME_MAX is 255 bytes.
    { arbitrary: fc.integer({ min: 250, max: 400 }).map((n) => `${marker}${"n".repeat(n)}`), weight: 1 },
  );
}

function pathString(v: FuzzVocabulary): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...v.paths), weight: 3 },
    { arbitrary: fc.array(pathSegment(v.marker), { maxLength: 5 }).map((segments) => [v.pathRoot, ...segments].join("/")), weight: 4 },
    // Relative paths and an existing path with ".." tails.
    { arbitrary: fc.array(pathSegment(v.marker), { minLength: 1, maxLength: 3 }).map((segments) => segments.join("/")), weight: 1 },
    { arbitrary: fc.constantFrom(...v.paths).map((p) => `${p}/../..`), weight: 1 },
    { arbitrary: weirdString(), weight: 1 },
  );
}

function idString(v: FuzzVocabulary): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.constantFrom(...v.ids), weight: 3 },
    { arbitrary: fc.constantFrom(...v.ids).map((id) => `${id}/../${id}`), weight: 1 },
    { arbitrary: weirdString(), weight: 3 },
  );
}

function nameString(v: FuzzVocabulary): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: fc.stringMatching(/^[a-z0-9-]{1,16}$/).map((s) => `${v.marker}-${s}`), weight: 3 },
    { arbitrary: fc.constantFrom(`${v.marker}-a`, `${v.marker}-b`), weight: 2 },
    { arbitrary: weirdString(), weight: 2 },
  );
}

/** A string for a field, chosen by what the field's name says it holds. */
function stringFor(field: DescField, v: FuzzVocabulary): fc.Arbitrary<string> {
  const name = field.name;
  if (name.endsWith("path")) return pathString(v);
  if (name === "node_id") return fc.oneof(fc.constantFrom(...v.nodeIds), weirdString());
  if (name.endsWith("_id") || name.endsWith("_ids")) return idString(v);
  if (name === "name" || name === "starting_token") return nameString(v);
  return weirdString();
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const MiB = 1024n * 1024n;

function scalar(type: ScalarType, field: DescField, v: FuzzVocabulary): fc.Arbitrary<unknown> {
  switch (type) {
    case ScalarType.STRING:
      return stringFor(field, v);
    case ScalarType.BOOL:
      return fc.boolean();
    case ScalarType.BYTES:
      return fc.uint8Array({ maxLength: 64 });
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return fc.double();
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1, 2 ** 31 - 1, -(2 ** 31)));
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return fc.oneof(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.constantFrom(0, 1, 2 ** 32 - 1));
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.constantFrom(0n, 1n, 2n ** 64n - 1n, 64n * MiB));
    default:
      // int64, sint64, sfixed64: sizes in the CSI messages, so plausible sizes too.
      return fc.oneof(
        fc.bigInt({ min: INT64_MIN, max: INT64_MAX }),
        fc.constantFrom(0n, -1n, 1n, INT64_MAX, INT64_MIN, 4096n, MiB, 16n * MiB, 64n * MiB, 96n * MiB, 1024n * MiB, 2n ** 53n + 1n),
      );
  }
}

function enumNumber(field: DescField): fc.Arbitrary<number> {
  const known = field.enum?.values.map((value) => value.number) ?? [0];
  return fc.oneof({ arbitrary: fc.constantFrom(...known), weight: 4 }, { arbitrary: fc.integer(), weight: 1 });
}

/** Up to a few elements, sometimes with the first repeated (duplicated capabilities, ids, flags). */
function listOf<T>(element: fc.Arbitrary<T>): fc.Arbitrary<T[]> {
  return fc.tuple(fc.array(element, { maxLength: 3 }), fc.nat(2)).map(([items, copies]) => {
    const first = items[0];
    return first === undefined ? items : [...items, ...Array.from({ length: copies }, () => first)];
  });
}

/** The value of one (singular, list or map) field as a `create` init value. */
function fieldValue(field: DescField, v: FuzzVocabulary, depth: number): fc.Arbitrary<unknown> {
  switch (field.fieldKind) {
    case "scalar":
      return scalar(field.scalar, field, v);
    case "enum":
      return enumNumber(field);
    case "message":
      return messageInit(field.message, v, depth + 1);
    case "list":
      if (field.listKind === "message") return listOf(messageInit(field.message, v, depth + 1));
      if (field.listKind === "enum") return listOf(enumNumber(field));
      return listOf(scalar(field.scalar, field, v));
    case "map": {
      const value =
        field.mapKind === "message"
          ? messageInit(field.message, v, depth + 1)
          : field.mapKind === "enum"
            ? enumNumber(field)
            : scalar(field.scalar, field, v);
      const key = field.mapKey === ScalarType.STRING ? weirdString() : fc.integer({ min: 0, max: 1000 }).map(String);
      return fc.dictionary(key, value, { maxKeys: 4 });
    }
  }
}

function oneofValue(oneof: DescOneof, v: FuzzVocabulary, depth: number): fc.Arbitrary<unknown> {
  return fc.oneof(
    ...oneof.fields.map((field) => fieldValue(field, v, depth).map((value) => ({ case: field.localName, value }))),
    fc.constant({ case: undefined }),
  );
}

/** A plain init object for `desc`; past a few levels, nested messages are left empty. */
function messageInit(desc: DescMessage, v: FuzzVocabulary, depth: number): fc.Arbitrary<Record<string, unknown>> {
  if (depth > 4) return fc.constant({});
  const members: Record<string, fc.Arbitrary<unknown>> = {};
  for (const member of desc.members) {
    members[member.localName] = member.kind === "oneof" ? oneofValue(member, v, depth) : fieldValue(member, v, depth);
  }
  // Any subset of the fields is set: missing required fields are part of the fuzz.
  return fc.record(members, { requiredKeys: [] });
}

/** Messages of type `desc` with every field drawn from the fuzz values above. */
export function messageArbitrary<Desc extends DescMessage>(desc: Desc, vocabulary: FuzzVocabulary): fc.Arbitrary<Message> {
  return messageInit(desc, vocabulary, 0).map((init) => create(desc, init as MessageInitShape<Desc>));
}
