/**
 * A log line's fields as JSON members (`,"key":value,...`), ready to splice
 * into the line. JSON.stringify does the work; what it refuses (a BigInt, such
 * as an int64 field of a CSI message, or an object that contains itself) is
 * written as pino wrote it: a BigInt as a number (as a string when a double
 * cannot hold it exactly) and a repeated ancestor as "[Circular]". A field that
 * still cannot be written (a throwing getter or toJSON) costs the line its
 * fields, never the call that logged it.
 */

export type LogFields = Readonly<Record<string, unknown>>;

export function jsonFields(fields: LogFields): string {
  let json: string;
  try {
    json = JSON.stringify(fields);
  } catch {
    try {
      json = JSON.stringify(fields, tolerantReplacer());
    } catch (err) {
      return `,"logFieldsError":${JSON.stringify(err instanceof Error ? err.message : String(err))}`;
    }
  }
  // "{}" has no members; otherwise drop the braces and lead with a comma.
  return json.length <= 2 ? "" : `,${json.slice(1, -1)}`;
}

function tolerantReplacer(): (this: unknown, key: string, value: unknown) => unknown {
  // JSON.stringify calls the replacer depth first with `this` the holder of
  // `value`, so the ancestors of `value` are the stack up to that holder.
  const ancestors: unknown[] = [];
  return function replace(this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === "bigint") {
      const n = Number(value);
      return Number.isSafeInteger(n) ? n : value.toString();
    }
    if (typeof value !== "object" || value === null) return value;
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(value)) return "[Circular]";
    ancestors.push(value);
    return value;
  };
}
