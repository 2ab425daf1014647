import { readFileSync } from "node:fs";

/**
 * Arguments of csictl: repeated `--flag value` / `--flag=value` options and
 * positionals, parsed by hand because each command has its own flags, named
 * after the CSI fields, and `__complete` needs to parse a half-typed line
 * without failing. Sizes take binary and decimal suffixes (10Gi, 500M);
 * secrets come only from a file or the environment, never from argv.
 */

export class UsageError extends Error {}

export interface ParsedArgs {
  readonly positionals: string[];
  /** Every value of every flag, in order; a bare boolean flag has the value "true". */
  readonly flags: Map<string, string[]>;
}

/** Flags that never take a value. */
export const BOOLEAN_FLAGS = new Set(["readonly", "block", "watch", "help", "no-color", "all"]);

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else if (BOOLEAN_FLAGS.has(name)) value = "true";
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag --${name} needs a value`);
      value = next;
      i++;
    }
    if (name === "secret" || name === "secrets" || (name.startsWith("secret-") && name !== "secrets-file"))
      throw new UsageError("secrets are never taken from the command line: use --secrets-file or CSI_SECRETS / CSI_SECRET_<KEY>");
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return { positionals, flags };
}

export class Args {
  readonly #parsed: ParsedArgs;
  readonly #used = new Set<string>();

  constructor(parsed: ParsedArgs) {
    this.#parsed = parsed;
  }

  get positionals(): readonly string[] {
    return this.#parsed.positionals;
  }

  positional(index: number, what: string): string {
    const value = this.#parsed.positionals[index];
    if (value === undefined || value === "") throw new UsageError(`missing ${what}`);
    return value;
  }

  string(name: string): string | undefined {
    this.#used.add(name);
    return this.#parsed.flags.get(name)?.at(-1);
  }

  required(name: string, what: string): string {
    const value = this.string(name);
    if (value === undefined || value === "") throw new UsageError(`--${name} is required: ${what}`);
    return value;
  }

  list(name: string): string[] {
    this.#used.add(name);
    return this.#parsed.flags.get(name) ?? [];
  }

  bool(name: string): boolean {
    const value = this.string(name);
    if (value === undefined) return false;
    if (value === "true" || value === "") return true;
    if (value === "false") return false;
    throw new UsageError(`--${name} takes true or false, not ${JSON.stringify(value)}`);
  }

  /** `k=v` pairs of a repeated flag. */
  map(name: string): Record<string, string> {
    const out: Record<string, string> = {};
    for (const pair of this.list(name)) {
      const eq = pair.indexOf("=");
      if (eq <= 0) throw new UsageError(`--${name} takes key=value, not ${JSON.stringify(pair)}`);
      out[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    return out;
  }

  size(name: string): bigint | undefined {
    const value = this.string(name);
    return value === undefined ? undefined : parseSize(value, `--${name}`);
  }

  integer(name: string): number | undefined {
    const value = this.string(name);
    if (value === undefined) return undefined;
    if (!/^\d+$/.test(value)) throw new UsageError(`--${name} takes a whole number, not ${JSON.stringify(value)}`);
    return Number(value);
  }

  /** Flags given that the command did not read: a typo, most likely. */
  unused(): string[] {
    return [...this.#parsed.flags.keys()].filter((f) => !this.#used.has(f));
  }
}

const SIZE_UNITS: Record<string, bigint> = {
  "": 1n,
  k: 1000n,
  m: 1000n ** 2n,
  g: 1000n ** 3n,
  t: 1000n ** 4n,
  ki: 1024n,
  mi: 1024n ** 2n,
  gi: 1024n ** 3n,
  ti: 1024n ** 4n,
};

/** "10Gi", "500M", "1048576" -> bytes. */
export function parseSize(text: string, what: string): bigint {
  const match = /^(\d+)\s*([kmgt]i?)?b?$/i.exec(text.trim());
  const unit = SIZE_UNITS[(match?.[2] ?? "").toLowerCase()];
  if (!match || unit === undefined) throw new UsageError(`${what}: ${JSON.stringify(text)} is not a size (e.g. 10Gi, 512Mi, 1G, 1048576)`);
  return BigInt(match[1] ?? "0") * unit;
}

/**
 * Secrets for requests that carry them: `--secrets-file` (JSON object or
 * k=v lines), then CSI_SECRETS (JSON object or k=v,k=v), then each
 * CSI_SECRET_<KEY> variable (the key as written after the prefix).
 */
export function loadSecrets(file: string | undefined, env: NodeJS.ProcessEnv): Record<string, string> {
  const secrets: Record<string, string> = {};
  const absorb = (text: string, where: string, separator: RegExp) => {
    const trimmed = text.trim();
    if (trimmed === "") return;
    if (trimmed.startsWith("{")) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(trimmed);
      } catch {
        throw new UsageError(`${where} is not valid JSON`);
      }
      if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new UsageError(`${where}: expected a JSON object`);
      for (const [k, v] of Object.entries(parsed)) {
        if (typeof v !== "string") throw new UsageError(`${where}: the value of ${JSON.stringify(k)} is not a string`);
        secrets[k] = v;
      }
      return;
    }
    for (const line of trimmed.split(separator)) {
      if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
      const eq = line.indexOf("=");
      if (eq <= 0) throw new UsageError(`${where}: expected key=value entries`);
      secrets[line.slice(0, eq).trim()] = line.slice(eq + 1);
    }
  };
  if (file !== undefined) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new UsageError(`--secrets-file ${file}: ${(err as Error).message}`);
    }
    absorb(text, `--secrets-file ${file}`, /\r?\n/);
  }
  if (env.CSI_SECRETS !== undefined) absorb(env.CSI_SECRETS, "CSI_SECRETS", /,/);
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith("CSI_SECRET_") && value !== undefined) secrets[name.slice("CSI_SECRET_".length)] = value;
  }
  return secrets;
}
