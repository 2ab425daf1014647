/**
 * Field rules of the CSI spec that are checked on what a plugin returns:
 * size limits, the plugin name format and the topology key/value format.
 */

/** "128 bytes | string" — the general size limit of a string field. */
export const STRING_LIMIT_BYTES = 128;
/** "4 KiB | map<string, string>". */
export const MAP_LIMIT_BYTES = 4096;
/** NodeGetInfoResponse.node_id: "The size of this field SHALL NOT exceed 256 bytes." */
export const NODE_ID_LIMIT_BYTES = 256;
/** Names of volumes and snapshots may be as long as the general string limit. */
export const MAX_NAME_LENGTH = 128;

export function utf8Length(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

/** Bytes a map takes on the wire as keys and values (what the 4 KiB limit is about). */
export function mapBytes(map: Readonly<Record<string, string>>): number {
  let total = 0;
  for (const [key, value] of Object.entries(map)) total += utf8Length(key) + utf8Length(value);
  return total;
}

/** Problems of an identifier string the plugin generated (volume_id, snapshot_id, node_id). */
export function identifierProblem(field: string, value: string, limit = STRING_LIMIT_BYTES): string | undefined {
  if (value === "") return `${field} is empty (REQUIRED)`;
  const bytes = utf8Length(value);
  if (bytes > limit) return `${field} is ${bytes} bytes, over the ${limit}-byte limit`;
  return undefined;
}

export function mapProblem(field: string, map: Readonly<Record<string, string>>): string | undefined {
  const bytes = mapBytes(map);
  return bytes > MAP_LIMIT_BYTES ? `${field} is ${bytes} bytes, over the 4 KiB map limit` : undefined;
}

const ALNUM = /^[a-zA-Z0-9]$/;

/**
 * GetPluginInfoResponse.name: "MUST follow domain name notation format ... MUST
 * be 63 characters or less, beginning and ending with an alphanumeric character
 * ([a-z0-9A-Z]) with dashes (-), dots (.), and alphanumerics between."
 */
export function pluginNameProblems(name: string): string[] {
  const problems: string[] = [];
  if (name === "") return ["name is empty (REQUIRED)"];
  if (name.length > 63) problems.push(`name is ${name.length} characters long, more than 63`);
  if (!/^[a-zA-Z0-9]([-.a-zA-Z0-9]*[a-zA-Z0-9])?$/.test(name)) {
    problems.push("name must begin and end with an alphanumeric character and contain only dashes, dots and alphanumerics");
  } else {
    // Domain name notation: no empty label, no label starting or ending with a dash.
    for (const label of name.split(".")) {
      if (label === "") problems.push("name has an empty domain label (two dots in a row)");
      else if (!ALNUM.test(label[0] ?? "") || !ALNUM.test(label[label.length - 1] ?? ""))
        problems.push(`domain label ${JSON.stringify(label)} starts or ends with a dash`);
    }
  }
  return problems;
}

const KEY_NAME = /^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$/;
const KEY_PREFIX = /^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$/;
const SEGMENT_VALUE = /^[a-zA-Z0-9]([-_.a-zA-Z0-9]*[a-zA-Z0-9])?$/;

/** The prefix of a topology key (`com.example` of `com.example/zone`), or "" when it has none. */
export function topologyKeyPrefix(key: string): string {
  const slash = key.indexOf("/");
  return slash === -1 ? "" : key.slice(0, slash);
}

/** Problems of one topology segment map, per the Topology message's rules. */
export function topologyProblems(segments: Readonly<Record<string, string>>): string[] {
  const problems: string[] = [];
  const lowered = new Set<string>();
  for (const [key, value] of Object.entries(segments)) {
    const slash = key.indexOf("/");
    const prefix = slash === -1 ? undefined : key.slice(0, slash);
    const name = slash === -1 ? key : key.slice(slash + 1);
    if (name.length === 0 || name.length > 63 || !KEY_NAME.test(name)) {
      problems.push(
        `topology key ${JSON.stringify(key)}: the name must be 1-63 characters, begin and end alphanumeric, with '-', '_', '.' or alphanumerics between`,
      );
    }
    if (
      prefix !== undefined &&
      (prefix.length === 0 ||
        prefix.length > 63 ||
        !KEY_PREFIX.test(prefix) ||
        prefix.split(".").some((l) => l === "" || l.startsWith("-") || l.endsWith("-")))
    ) {
      problems.push(`topology key ${JSON.stringify(key)}: the prefix must be a lower-case domain name of at most 63 characters`);
    }
    if (lowered.has(key.toLowerCase())) problems.push(`topology key ${JSON.stringify(key)} appears twice when compared case-insensitively`);
    lowered.add(key.toLowerCase());
    if (value.length === 0 || value.length > 63 || !SEGMENT_VALUE.test(value)) {
      problems.push(
        `topology value ${JSON.stringify(value)} of ${JSON.stringify(key)}: must be 1-63 characters, begin and end alphanumeric, with '-', '_', '.' or alphanumerics between`,
      );
    }
  }
  return problems;
}

/**
 * "If a key prefix is specified, it MUST be identical across all topology keys
 * returned by the SP (across all RPCs)."
 */
export function topologyPrefixProblem(topologies: readonly Readonly<Record<string, string>>[]): string | undefined {
  const prefixes = new Set<string>();
  for (const segments of topologies)
    for (const key of Object.keys(segments)) {
      const prefix = topologyKeyPrefix(key);
      if (prefix !== "") prefixes.add(prefix);
    }
  return prefixes.size > 1 ? `topology keys use different prefixes: ${[...prefixes].join(", ")}` : undefined;
}

/**
 * Whether a volume accessible from `volume` can be used at `location`: every
 * segment the volume is constrained to has the same value at the location.
 */
export function topologyAdmits(volume: Readonly<Record<string, string>>, location: Readonly<Record<string, string>>): boolean {
  return Object.entries(volume).every(([key, value]) => location[key] === value);
}
