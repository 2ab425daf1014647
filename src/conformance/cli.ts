import { readFile } from "node:fs/promises";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { parseSecrets, parseSize, type ConformanceOptions, type StringMap } from "./options.js";

export const USAGE = `Usage: csi-conformance --endpoint unix:///path/csi.sock [options]

Checks a CSI endpoint against the CSI v1.12 specification and prints a
per-check report ending in "N passed, N failed". Run it on the node the
endpoint serves (it mounts, reads and writes published volumes), as root.

Endpoints
  --endpoint URL              Identity and Node service (unix:///abs/path.sock or tcp://host:port); or $CSI_ENDPOINT
  --controller-endpoint URL   Controller service, when it runs apart (default: --endpoint)

Volumes
  --staging-dir DIR           where staging directories are made (default: a new directory in the OS temp dir)
  --target-dir DIR            where target paths are made (default: a new directory in the OS temp dir)
  --parameters k=v ...        CreateVolume parameters (repeatable, or several after one flag, or k=v,k2=v2)
  --snapshot-parameters k=v   CreateSnapshot parameters
  --mutable-parameters k=v    mutable parameters the driver accepts (ControllerModifyVolume checks)
  --secrets-file FILE         JSON: {"key":"value"} for every RPC, or {"CreateVolumeSecret":{...},...} per RPC
  --test-volume-size SIZE     size of test volumes (default 1Gi; suffixes Ki Mi Gi Ti K M G T)
  --test-volume-expand-size SIZE  size volumes are expanded to (default twice the volume size)
  --fs-type TYPE              fs_type of mount capabilities (default: empty, the driver's choice)
  --access-types LIST         access types for node round trips: mount,block (default both)
  --other-node-id ID          a second node the controller knows (published-elsewhere checks)
  --no-data-checks            do not read or write through published paths

Run
  --filter REGEX              run only checks whose id or title matches
  --skip REGEX                leave out checks whose id or title matches
  --idempotent-count N        how often mutating calls are repeated (default 3)
  --rpc-timeout DURATION      deadline of each RPC (default 2m; e.g. 30s, 500ms)
  --check-timeout DURATION    deadline of each check (default 10m)
  --lenient                   report failed SHOULD checks as warnings (not failures)

Output
  --json FILE                 also write the report as JSON (- for standard output)
  --verbose                   show notes of passed checks too
  --list                      list the checks and exit
  --help                      show this help

Exit status: 0 when every check passed or was skipped, 1 when a check failed,
2 when the suite could not run (bad flags, no endpoint, no Identity service).`;

export class UsageError extends Error {}

export interface CliOptions {
  readonly conformance: ConformanceOptions;
  readonly jsonPath: string | undefined;
  readonly verbose: boolean;
  readonly list: boolean;
  readonly help: boolean;
}

function parseDuration(flag: string, text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: invalid duration ${JSON.stringify(text)} (use e.g. 30s, 2m, 500ms)`);
  const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? "s"] ?? 1000;
  return Number(m[1]) * factor;
}

function addPairs(flag: string, target: StringMap, text: string): void {
  for (const pair of text.split(",")) {
    if (pair.trim() === "") continue;
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError(`${flag}: expected key=value, got ${JSON.stringify(pair)}`);
    target[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
}

function regex(flag: string, text: string): RegExp {
  try {
    return new RegExp(text);
  } catch (err) {
    throw new UsageError(`${flag}: invalid regular expression: ${(err as Error).message}`);
  }
}

/** Every flag; the usage text above describes them. */
const FLAGS = {
  endpoint: { type: "string" },
  "controller-endpoint": { type: "string" },
  "staging-dir": { type: "string" },
  "target-dir": { type: "string" },
  parameters: { type: "string", multiple: true },
  "snapshot-parameters": { type: "string", multiple: true },
  "mutable-parameters": { type: "string", multiple: true },
  "secrets-file": { type: "string" },
  "test-volume-size": { type: "string" },
  "test-volume-expand-size": { type: "string" },
  "fs-type": { type: "string" },
  "access-types": { type: "string" },
  "other-node-id": { type: "string" },
  "no-data-checks": { type: "boolean" },
  filter: { type: "string" },
  skip: { type: "string" },
  "idempotent-count": { type: "string" },
  "rpc-timeout": { type: "string" },
  "check-timeout": { type: "string" },
  lenient: { type: "boolean" },
  json: { type: "string" },
  verbose: { type: "boolean" },
  list: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const satisfies NonNullable<ParseArgsConfig["options"]>;

/** Flags taking key=value pairs: repeated, several words after one flag, or comma-separated. */
const PAIR_FLAGS = ["parameters", "snapshot-parameters", "mutable-parameters"] as const;
type PairFlag = (typeof PAIR_FLAGS)[number];

function isPairFlag(name: string): name is PairFlag {
  return (PAIR_FLAGS as readonly string[]).includes(name);
}

/** Longest piece of a bad argument repeated in an error message. */
const MAX_ECHO = 80;

function shown(text: string): string {
  return JSON.stringify(text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}...` : text);
}

function usageError(err: unknown): UsageError {
  const code = err instanceof Error && "code" in err ? err.code : undefined;
  const message = err instanceof Error ? err.message : String(err);
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
    const flag = /'([^']*)'/.exec(message)?.[1] ?? "";
    return new UsageError(`unknown flag ${shown(flag)} (see --help)`);
  }
  return new UsageError(`${message.split("\n")[0] ?? message} (see --help)`);
}

/** Parse the command line (flags as `--name value` or `--name=value`). */
export async function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<CliOptions> {
  let parsed;
  try {
    // A stray "--" (as `npm run conformance -- -- ...` passes on) ends nothing: flags may follow it.
    parsed = parseArgs({ args: argv.filter((a) => a !== "--"), options: FLAGS, strict: true, allowPositionals: true, tokens: true });
  } catch (err) {
    throw usageError(err);
  }
  const { values, tokens } = parsed;
  const pairs: Record<PairFlag, StringMap> = { parameters: {}, "snapshot-parameters": {}, "mutable-parameters": {} };
  // `--parameters a=b c=d`: key=value words right after a pair flag belong to it; any other word is an error.
  let pairFlag: PairFlag | undefined;
  for (const token of tokens) {
    if (token.kind === "option") {
      pairFlag = isPairFlag(token.name) ? token.name : undefined;
      if (pairFlag !== undefined) addPairs(`--${pairFlag}`, pairs[pairFlag], token.value ?? "");
    } else if (token.kind === "positional" && pairFlag !== undefined && token.value.includes("=")) {
      addPairs(`--${pairFlag}`, pairs[pairFlag], token.value);
    } else if (token.kind === "positional") {
      throw new UsageError(`unexpected argument ${shown(token.value)} (see --help)`);
    }
  }
  const { parameters, "snapshot-parameters": snapshotParameters, "mutable-parameters": mutableParameters } = pairs;

  const help = values.help === true;
  const list = values.list === true;
  const endpoint = values.endpoint ?? env.CSI_ENDPOINT;
  if (endpoint === undefined && !help && !list) throw new UsageError("--endpoint is required (or set CSI_ENDPOINT)");

  let secrets: ConformanceOptions["secrets"];
  const secretsFile = values["secrets-file"];
  if (secretsFile !== undefined) {
    let text: string;
    try {
      text = await readFile(secretsFile, "utf8");
    } catch (err) {
      throw new UsageError(`--secrets-file: ${(err as Error).message}`);
    }
    try {
      secrets = parseSecrets(JSON.parse(text));
    } catch (err) {
      throw new UsageError(`--secrets-file ${secretsFile}: ${(err as Error).message}`);
    }
  }

  const size = (flag: "test-volume-size" | "test-volume-expand-size") => {
    const text = values[flag];
    if (text === undefined) return undefined;
    try {
      return parseSize(text);
    } catch (err) {
      throw new UsageError(`--${flag}: ${(err as Error).message}`);
    }
  };
  const idempotentText = values["idempotent-count"];
  const idempotentCount = idempotentText === undefined ? undefined : Number(idempotentText);
  if (idempotentCount !== undefined && (!Number.isInteger(idempotentCount) || idempotentCount < 2))
    throw new UsageError("--idempotent-count must be an integer of at least 2");
  const accessText = values["access-types"];
  let accessTypes: ("mount" | "block")[] | undefined;
  if (accessText !== undefined) {
    accessTypes = [];
    for (const word of accessText
      .split(",")
      .map((w) => w.trim())
      .filter((w) => w !== "")) {
      if (word !== "mount" && word !== "block")
        throw new UsageError(`--access-types: unknown access type ${JSON.stringify(word)} (mount, block)`);
      accessTypes.push(word);
    }
  }
  const filter = values.filter;
  const skip = values.skip;
  const rpcTimeout = values["rpc-timeout"];
  const checkTimeout = values["check-timeout"];
  const testVolumeSize = size("test-volume-size");
  const testVolumeExpandSize = size("test-volume-expand-size");

  const conformance: ConformanceOptions = {
    endpoint: endpoint ?? "",
    ...(values["controller-endpoint"] !== undefined ? { controllerEndpoint: values["controller-endpoint"] } : {}),
    ...(values["staging-dir"] !== undefined ? { stagingDir: values["staging-dir"] } : {}),
    ...(values["target-dir"] !== undefined ? { targetDir: values["target-dir"] } : {}),
    parameters,
    snapshotParameters,
    mutableParameters,
    ...(secrets !== undefined ? { secrets } : {}),
    ...(testVolumeSize !== undefined ? { testVolumeSize } : {}),
    ...(testVolumeExpandSize !== undefined ? { testVolumeExpandSize } : {}),
    ...(values["fs-type"] !== undefined ? { fsType: values["fs-type"] } : {}),
    ...(idempotentCount !== undefined ? { idempotentCount } : {}),
    ...(rpcTimeout !== undefined ? { rpcTimeoutMs: parseDuration("--rpc-timeout", rpcTimeout) } : {}),
    ...(checkTimeout !== undefined ? { checkTimeoutMs: parseDuration("--check-timeout", checkTimeout) } : {}),
    ...(filter !== undefined ? { filter: regex("--filter", filter) } : {}),
    ...(skip !== undefined ? { skip: regex("--skip", skip) } : {}),
    lenient: values.lenient === true,
    ...(values["other-node-id"] !== undefined ? { otherNodeId: values["other-node-id"] } : {}),
    ...(accessTypes !== undefined ? { accessTypes } : {}),
    noDataChecks: values["no-data-checks"] === true,
  };
  return { conformance, jsonPath: values.json, verbose: values.verbose === true, list, help };
}
