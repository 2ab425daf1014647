/**
 * Command-line flags, parsed the way Go's `flag` package does so the Go
 * driver's manifests and scripts keep working: `-name value`, `--name value`,
 * `-name=value`, boolean `-name` / `-name=false`, `--` ends the flags. Every
 * flag can also come from the environment as DO_CSI_<NAME> (upper case,
 * dashes as underscores); a flag on the command line wins.
 */

export type FlagType = "string" | "bool" | "uint" | "float" | "duration";

export interface FlagSpec {
  readonly name: string;
  readonly type: FlagType;
  readonly default: string;
  readonly usage: string;
  /** Extra environment variables accepted for this flag, after DO_CSI_<NAME>. */
  readonly envAliases?: readonly string[];
  /** Value shown in --help instead of the default (for secrets and computed defaults). */
  readonly shownDefault?: string;
}

export class FlagError extends Error {}

export const ENV_PREFIX = "DO_CSI_";

export function envName(flag: string): string {
  return ENV_PREFIX + flag.toUpperCase().replace(/-/g, "_");
}

export interface ParsedFlags {
  /** Raw string value of every flag (defaults filled in). */
  readonly values: ReadonlyMap<string, string>;
  /** Flags that were set explicitly, on the command line or in the environment. */
  readonly explicit: ReadonlySet<string>;
  readonly help: boolean;
}

const TRUE = new Set(["1", "t", "T", "true", "TRUE", "True"]);
const FALSE = new Set(["0", "f", "F", "false", "FALSE", "False"]);

export function parseBool(flag: string, value: string): boolean {
  if (TRUE.has(value)) return true;
  if (FALSE.has(value)) return false;
  throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: must be true or false`);
}

export function parseUint(flag: string, value: string): number {
  if (!/^\d+$/.test(value))
    throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: must be a non-negative integer`);
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: too large`);
  return n;
}

export function parseFloatFlag(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < 0) {
    throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: must be a non-negative number`);
  }
  return n;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Go-style durations: "30s", "1m30s", "250ms"; a bare number means seconds. */
export function parseDuration(flag: string, value: string): number {
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? "s"] ?? 1000);
    consumed = re.lastIndex;
  }
  if (consumed !== value.length || value === "") {
    throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: must be a duration such as 30s, 2m or 500ms`);
  }
  return total;
}

function checkType(spec: FlagSpec, value: string): void {
  switch (spec.type) {
    case "bool":
      parseBool(spec.name, value);
      break;
    case "uint":
      parseUint(spec.name, value);
      break;
    case "float":
      parseFloatFlag(spec.name, value);
      break;
    case "duration":
      parseDuration(spec.name, value);
      break;
    case "string":
      break;
  }
}

export function parseFlags(specs: readonly FlagSpec[], argv: readonly string[], env: NodeJS.ProcessEnv): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, string>();
  const explicit = new Set<string>();
  for (const spec of specs) {
    values.set(spec.name, spec.default);
    for (const key of [envName(spec.name), ...(spec.envAliases ?? [])]) {
      const fromEnv = env[key];
      if (fromEnv !== undefined && fromEnv !== "") {
        try {
          checkType(spec, fromEnv);
        } catch (err) {
          throw new FlagError(`${(err as Error).message} (from environment variable ${key})`);
        }
        values.set(spec.name, fromEnv);
        explicit.add(spec.name);
        break;
      }
    }
  }

  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      if (i + 1 < argv.length) throw new FlagError(`unexpected argument ${JSON.stringify(argv[i + 1])}: this program takes only flags`);
      break;
    }
    if (!arg.startsWith("-") || arg === "-")
      throw new FlagError(`unexpected argument ${JSON.stringify(arg)}: this program takes only flags`);
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    if (name === "h" || name === "help") {
      help = true;
      continue;
    }
    const spec = byName.get(name);
    if (!spec) throw new FlagError(`flag provided but not defined: -${name} (see --help)`);
    let value: string;
    if (eq !== -1) {
      value = body.slice(eq + 1);
    } else if (spec.type === "bool") {
      value = "true";
    } else {
      const next = argv[i + 1];
      if (next === undefined) throw new FlagError(`flag needs an argument: --${name}`);
      value = next;
      i++;
    }
    checkType(spec, value);
    values.set(name, value);
    explicit.add(name);
  }
  return { values, explicit, help };
}

export function usage(program: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage of ${program}:`];
  for (const spec of specs) {
    const kind = spec.type === "bool" ? "" : ` ${spec.type}`;
    lines.push(`  --${spec.name}${kind}`);
    const shown = spec.shownDefault ?? spec.default;
    const def = shown === "" || (spec.type === "bool" && shown === "false") ? "" : ` (default ${JSON.stringify(shown)})`;
    lines.push(
      `        ${spec.usage}${def} [env ${envName(spec.name)}${spec.envAliases?.length ? `, ${spec.envAliases.join(", ")}` : ""}]`,
    );
  }
  return lines.join("\n");
}
