import { readFile } from "node:fs/promises";
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

/** Parse the command line (flags as `--name value` or `--name=value`). */
export async function parseCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<CliOptions> {
  const values = new Map<string, string>();
  const parameters: StringMap = {};
  const snapshotParameters: StringMap = {};
  const mutableParameters: StringMap = {};
  const booleans = new Set(["lenient", "no-data-checks", "verbose", "list", "help"]);
  const pairFlags: Record<string, StringMap> = {
    parameters,
    "snapshot-parameters": snapshotParameters,
    "mutable-parameters": mutableParameters,
  };
  const known = new Set([
    "endpoint",
    "controller-endpoint",
    "staging-dir",
    "target-dir",
    "secrets-file",
    "test-volume-size",
    "test-volume-expand-size",
    "fs-type",
    "access-types",
    "other-node-id",
    "filter",
    "skip",
    "idempotent-count",
    "rpc-timeout",
    "check-timeout",
    "json",
    ...booleans,
    ...Object.keys(pairFlags),
  ]);
  const flags = new Set<string>();

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") continue;
    if (!arg.startsWith("-")) throw new UsageError(`unexpected argument ${JSON.stringify(arg)} (see --help)`);
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    if (name === "h") {
      flags.add("help");
      continue;
    }
    if (!known.has(name)) throw new UsageError(`unknown flag --${name} (see --help)`);
    if (booleans.has(name)) {
      if (eq !== -1) throw new UsageError(`--${name} takes no value`);
      flags.add(name);
      continue;
    }
    let value: string;
    if (eq !== -1) value = body.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`--${name} needs a value`);
      value = next;
      i++;
    }
    const pairs = pairFlags[name];
    if (pairs !== undefined) {
      addPairs(`--${name}`, pairs, value);
      // `--parameters a=b c=d`: further key=value words belong to the same flag.
      while (i + 1 < argv.length && !(argv[i + 1] ?? "").startsWith("-") && (argv[i + 1] ?? "").includes("=")) {
        addPairs(`--${name}`, pairs, argv[i + 1] ?? "");
        i++;
      }
      continue;
    }
    values.set(name, value);
  }

  const help = flags.has("help");
  const list = flags.has("list");
  const endpoint = values.get("endpoint") ?? env.CSI_ENDPOINT;
  if (endpoint === undefined && !help && !list) throw new UsageError("--endpoint is required (or set CSI_ENDPOINT)");

  let secrets: ConformanceOptions["secrets"];
  const secretsFile = values.get("secrets-file");
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

  const size = (flag: string) => {
    const text = values.get(flag);
    if (text === undefined) return undefined;
    try {
      return parseSize(text);
    } catch (err) {
      throw new UsageError(`--${flag}: ${(err as Error).message}`);
    }
  };
  const idempotentText = values.get("idempotent-count");
  const idempotentCount = idempotentText === undefined ? undefined : Number(idempotentText);
  if (idempotentCount !== undefined && (!Number.isInteger(idempotentCount) || idempotentCount < 2))
    throw new UsageError("--idempotent-count must be an integer of at least 2");
  const accessText = values.get("access-types");
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
  const filter = values.get("filter");
  const skip = values.get("skip");
  const rpcTimeout = values.get("rpc-timeout");
  const checkTimeout = values.get("check-timeout");
  const testVolumeSize = size("test-volume-size");
  const testVolumeExpandSize = size("test-volume-expand-size");

  const conformance: ConformanceOptions = {
    endpoint: endpoint ?? "",
    ...(values.has("controller-endpoint") ? { controllerEndpoint: values.get("controller-endpoint") } : {}),
    ...(values.has("staging-dir") ? { stagingDir: values.get("staging-dir") } : {}),
    ...(values.has("target-dir") ? { targetDir: values.get("target-dir") } : {}),
    parameters,
    snapshotParameters,
    mutableParameters,
    ...(secrets !== undefined ? { secrets } : {}),
    ...(testVolumeSize !== undefined ? { testVolumeSize } : {}),
    ...(testVolumeExpandSize !== undefined ? { testVolumeExpandSize } : {}),
    ...(values.has("fs-type") ? { fsType: values.get("fs-type") } : {}),
    ...(idempotentCount !== undefined ? { idempotentCount } : {}),
    ...(rpcTimeout !== undefined ? { rpcTimeoutMs: parseDuration("--rpc-timeout", rpcTimeout) } : {}),
    ...(checkTimeout !== undefined ? { checkTimeoutMs: parseDuration("--check-timeout", checkTimeout) } : {}),
    ...(filter !== undefined ? { filter: regex("--filter", filter) } : {}),
    ...(skip !== undefined ? { skip: regex("--skip", skip) } : {}),
    lenient: flags.has("lenient"),
    ...(values.has("other-node-id") ? { otherNodeId: values.get("other-node-id") } : {}),
    ...(accessTypes !== undefined ? { accessTypes } : {}),
    noDataChecks: flags.has("no-data-checks"),
  };
  return { conformance, jsonPath: values.get("json"), verbose: flags.has("verbose"), list, help };
}
