import { hostname } from "node:os";
import type { LogLevel } from "../log/levels.js";
import { parseEndpoint } from "../util/endpoint.js";
import { LOG_LEVELS } from "../log/levels.js";
import {
  ALPHA_FEATURES,
  DEFAULT_DRIVER_NAME,
  defaultDriverName,
  defaultEndpoint,
  LOCAL_DRIVER_NAME,
  validPluginName,
  type AlphaFeature,
  type BackendKind,
  type Config,
  type Mode,
} from "../config.js";
import { FlagError, parseBool, parseDuration, parseFlags, parseFloatFlag, parseUint, type FlagSpec, type ParsedFlags } from "./flags.js";

export const PROGRAM = "do-csi-plugin";
/** The Go driver's per-droplet attachment limit. */
export const DIGITALOCEAN_VOLUME_LIMIT = 7;

/** Every flag of the Go csi-digitalocean v4 driver, with its name, default and meaning, then this driver's own. */
export const FLAGS: readonly FlagSpec[] = [
  {
    name: "endpoint",
    type: "string",
    default: "",
    shownDefault: `${defaultEndpoint(DEFAULT_DRIVER_NAME)} (digitalocean); ${defaultEndpoint("<driver-name>")} (local)`,
    usage: "CSI endpoint: unix:///path/to/socket or tcp://host:port.",
  },
  {
    name: "token",
    type: "string",
    default: "",
    usage: "DigitalOcean access token; without it the driver runs in node mode.",
    envAliases: ["DIGITALOCEAN_ACCESS_TOKEN"],
  },
  { name: "url", type: "string", default: "https://api.digitalocean.com/", usage: "DigitalOcean API URL." },
  {
    name: "region",
    type: "string",
    default: "",
    usage: "DigitalOcean region slug. Specify only when running in controller mode outside of a DigitalOcean droplet.",
  },
  { name: "do-tag", type: "string", default: "", usage: "Tag DigitalOcean volumes on Create/Attach." },
  {
    name: "driver-name",
    type: "string",
    default: "",
    shownDefault: `${DEFAULT_DRIVER_NAME} (digitalocean), ${LOCAL_DRIVER_NAME} (local)`,
    usage: "Name for the driver.",
  },
  { name: "debug-addr", type: "string", default: "", usage: "Address to serve the HTTP debug server on (/health, /metrics)." },
  {
    name: "default-volumes-page-size",
    type: "uint",
    default: "0",
    usage: "The default page size used when paging through volumes results (default: do not specify and let the DO API choose).",
  },
  {
    name: "do-api-rate-limit",
    type: "float",
    default: "0",
    usage: "Impose QPS rate limit on DigitalOcean API usage (default: do not rate limit).",
  },
  {
    name: "validate-attachment",
    type: "bool",
    default: "false",
    usage: "Validate if the attachment has fully completed before formatting/mounting the device.",
  },
  {
    name: "volume-limit",
    type: "uint",
    default: "",
    shownDefault: `${DIGITALOCEAN_VOLUME_LIMIT} for digitalocean, 0 (unlimited) for local`,
    usage: "Volumes per node limit reported to the orchestrator.",
  },
  { name: "version", type: "bool", default: "false", usage: "Print the version and exit." },
  { name: "backend", type: "string", default: "digitalocean", usage: "Storage backend: digitalocean or local." },
  {
    name: "mode",
    type: "string",
    default: "",
    shownDefault: "derived: digitalocean from --token/--region as the Go driver does; local: all",
    usage: "Services to serve: controller, node or all.",
  },
  {
    name: "data-dir",
    type: "string",
    default: "/var/lib/do-csi-plugin",
    usage: "Local backend: directory holding volume and snapshot files and their metadata.",
  },
  {
    name: "overcommit-ratio",
    type: "float",
    default: "1",
    usage: "Local backend: capacity that may be promised to sparse volumes, as a multiple of the data directory's size.",
  },
  {
    name: "node-id",
    type: "string",
    default: "",
    shownDefault: "host name (local) or droplet id (digitalocean)",
    usage: "Node id reported by NodeGetInfo.",
  },
  {
    name: "kubelet-dir",
    type: "string",
    default: "/var/lib/kubelet",
    usage: "The kubelet's root directory; publications under it need shared mount propagation, which the node service checks.",
  },
  {
    name: "metadata-url",
    type: "string",
    default: "http://169.254.169.254/metadata/v1/",
    usage: "DigitalOcean droplet metadata service URL.",
  },
  { name: "by-id-dir", type: "string", default: "/dev/disk/by-id", usage: "Directory holding the scsi-0DO_Volume_<name> device links." },
  { name: "socket-mode", type: "string", default: "0660", usage: "File mode (octal) of the unix socket." },
  {
    name: "shutdown-timeout",
    type: "duration",
    default: "30s",
    usage: "How long in-flight calls may run after SIGTERM before they are cancelled.",
  },
  { name: "log-level", type: "string", default: "info", usage: `Log level: ${LOG_LEVELS.join(", ")}.` },
  { name: "log-format", type: "string", default: "json", usage: "Log format: json or pretty." },
  {
    name: "node-deployment",
    type: "bool",
    default: "false",
    usage:
      "Local backend: one instance per node, serving the controller and node services of this node's pool (no controller publish; volumes are expanded on the node).",
  },
  {
    name: "alpha-features",
    type: "string",
    default: "",
    usage: `Comma-separated alpha CSI capabilities to enable: ${ALPHA_FEATURES.join(", ")}, or all.`,
  },
];

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: must be one of ${allowed.join(", ")}`);
}

function validUrl(flag: string, value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol !== "http:" && url.protocol !== "https:") throw new Error("scheme");
  } catch {
    throw new FlagError(`invalid value ${JSON.stringify(value)} for flag --${flag}: must be an http(s) URL`);
  }
  return value.endsWith("/") ? value : `${value}/`;
}

function parseAlpha(value: string): Set<AlphaFeature> {
  const features = new Set<AlphaFeature>();
  for (const item of value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (item === "all") for (const f of ALPHA_FEATURES) features.add(f);
    else features.add(oneOf("alpha-features", item, ALPHA_FEATURES));
  }
  return features;
}

function deriveMode(backend: BackendKind, explicit: string, token: string, region: string): Mode {
  if (backend === "digitalocean" && token === "" && region !== "") {
    throw new FlagError("region flag must not be set when driver is running in node mode (i.e., token flag is unset)");
  }
  if (explicit !== "") {
    const mode = oneOf<Mode>("mode", explicit, ["controller", "node", "all"]);
    if (backend === "digitalocean" && mode !== "node" && token === "") {
      throw new FlagError(`--mode ${mode} needs --token: the controller service calls the DigitalOcean API`);
    }
    return mode;
  }
  if (backend === "local") return "all";
  // The Go driver's rules: no token, node only; token and region, controller only
  // (e.g. outside a droplet); token alone, controller and node on a droplet.
  if (token === "") return "node";
  return region !== "" ? "controller" : "all";
}

export interface CommandLine {
  readonly help: boolean;
  readonly version: boolean;
  readonly config: Config;
}

/** Parse argv and the environment into a validated configuration; throws FlagError with one clear line. */
export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv, version: string): CommandLine {
  const parsed: ParsedFlags = parseFlags(FLAGS, argv, env);
  const get = (name: string): string => parsed.values.get(name) ?? "";

  const backend = oneOf<BackendKind>("backend", get("backend"), ["digitalocean", "local"]);
  // An explicit empty value is checked (and refused) like any other; an unset flag takes the backend's default.
  const driverName = parsed.explicit.has("driver-name") ? get("driver-name") : defaultDriverName(backend);
  if (!validPluginName(driverName)) {
    throw new FlagError(
      `invalid value ${JSON.stringify(driverName)} for flag --driver-name: must be at most 63 characters of letters, digits, '-' and '.', starting and ending with a letter or digit`,
    );
  }
  // The local endpoint follows the driver's name; the DigitalOcean one is the Go driver's, whatever the name.
  const endpointText = parsed.explicit.has("endpoint")
    ? get("endpoint")
    : defaultEndpoint(backend === "local" ? driverName : DEFAULT_DRIVER_NAME);
  let endpoint;
  try {
    endpoint = parseEndpoint(endpointText);
  } catch (err) {
    throw new FlagError(`invalid value for flag --endpoint: ${(err as Error).message}`);
  }
  const socketModeText = get("socket-mode");
  if (!/^0?[0-7]{3}$/.test(socketModeText))
    throw new FlagError(`invalid value ${JSON.stringify(socketModeText)} for flag --socket-mode: must be an octal file mode such as 0660`);
  const token = get("token");
  const region = get("region");
  const nodeDeployment = parseBool("node-deployment", get("node-deployment"));
  if (nodeDeployment && backend !== "local") {
    throw new FlagError("flag --node-deployment needs --backend local: DigitalOcean volumes are attached by one cluster-wide controller");
  }
  const mode = deriveMode(backend, get("mode"), token, region);
  if (nodeDeployment && mode !== "all") {
    throw new FlagError(
      `--node-deployment serves both the controller and the node service of its node: drop --mode ${mode} (or set it to all)`,
    );
  }
  const volumeLimitText = get("volume-limit");
  const volumeLimit =
    volumeLimitText === "" ? (backend === "digitalocean" ? DIGITALOCEAN_VOLUME_LIMIT : 0) : parseUint("volume-limit", volumeLimitText);
  const overcommitRatio = parseFloatFlag("overcommit-ratio", get("overcommit-ratio"));
  if (overcommitRatio <= 0)
    throw new FlagError(`invalid value ${JSON.stringify(get("overcommit-ratio"))} for flag --overcommit-ratio: must be greater than 0`);
  const debugAddr = get("debug-addr");
  if (debugAddr !== "" && !/^(?:\[[0-9A-Fa-f:.]+\]|[^:]*):\d{1,5}$/.test(debugAddr)) {
    throw new FlagError(`invalid value ${JSON.stringify(debugAddr)} for flag --debug-addr: must be host:port or :port`);
  }
  const dataDir = get("data-dir");
  if (dataDir === "") throw new FlagError("flag --data-dir must not be empty");

  const config: Config = {
    driverName,
    version,
    endpoint,
    socketMode: parseInt(socketModeText, 8),
    shutdownTimeoutMs: parseDuration("shutdown-timeout", get("shutdown-timeout")),
    mode,
    backend,
    nodeDeployment,
    logLevel: oneOf<LogLevel>("log-level", get("log-level"), LOG_LEVELS),
    logFormat: oneOf("log-format", get("log-format"), ["json", "pretty"] as const),
    debugAddr,
    alpha: parseAlpha(get("alpha-features")),
    nodeId: get("node-id") || (backend === "local" ? hostname() : ""),
    kubeletDir: get("kubelet-dir"),
    volumeLimit,
    digitalocean: {
      token,
      apiUrl: validUrl("url", get("url")),
      region,
      tag: get("do-tag"),
      defaultVolumesPageSize: parseUint("default-volumes-page-size", get("default-volumes-page-size")),
      apiRateLimit: parseFloatFlag("do-api-rate-limit", get("do-api-rate-limit")),
      validateAttachment: parseBool("validate-attachment", get("validate-attachment")),
      metadataUrl: validUrl("metadata-url", get("metadata-url")),
      byIdDir: get("by-id-dir"),
    },
    local: { dataDir, overcommitRatio },
  };
  return { help: parsed.help, version: parseBool("version", get("version")), config };
}

/** The configuration as it may be logged: the token is never shown. */
export function describeConfig(config: Config): Record<string, unknown> {
  return {
    ...config,
    alpha: [...config.alpha],
    digitalocean: { ...config.digitalocean, token: config.digitalocean.token === "" ? "" : "<set>" },
  };
}
