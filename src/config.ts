import type { Endpoint } from "./util/endpoint.js";
import type { LogFormat } from "./log/logger.js";
import type { LogLevel } from "./log/levels.js";

/** The DigitalOcean backend's name: the Go driver's, so a cluster can swap images and keep its volumes. */
export const DEFAULT_DRIVER_NAME = "dobs.csi.digitalocean.com";
/** The local backend's own name, so both drivers can run side by side in one cluster. */
export const LOCAL_DRIVER_NAME = "local.csi.do-csi-plugin.io";

/** Which CSI services this process serves. */
export type Mode = "controller" | "node" | "all";
export type BackendKind = "digitalocean" | "local";

/** The driver name a backend uses unless --driver-name says otherwise. */
export function defaultDriverName(backend: BackendKind): string {
  return backend === "local" ? LOCAL_DRIVER_NAME : DEFAULT_DRIVER_NAME;
}

/** Where kubelet looks for a driver's socket: the default endpoint for a driver name. */
export function defaultEndpoint(driverName: string): string {
  return `unix:///var/lib/kubelet/plugins/${driverName}/csi.sock`;
}

/**
 * Capabilities that CSI v1.12 marks alpha. Conformance tools reject alpha
 * capabilities they do not know, so each is off unless switched on.
 */
export const ALPHA_FEATURES = [
  "volume-condition", // VOLUME_CONDITION (controller and node), volume_condition in ListVolumes/NodeGetVolumeStats
  "get-volume", // ControllerGetVolume, GET_VOLUME
  "get-snapshot", // GetSnapshot, GET_SNAPSHOT
  "single-node-multi-writer", // SINGLE_NODE_MULTI_WRITER and the SINGLE_NODE_{SINGLE,MULTI}_WRITER access modes
  "snapshot-metadata", // SNAPSHOT_METADATA_SERVICE and the SnapshotMetadata service (local backend)
] as const;
export type AlphaFeature = (typeof ALPHA_FEATURES)[number];

export interface DigitalOceanConfig {
  /** API token; never logged. */
  readonly token: string;
  readonly apiUrl: string;
  /** Region slug from --region; empty means "ask the metadata service". */
  readonly region: string;
  readonly tag: string;
  /** per_page for volume listings when the caller gives no max_entries; 0 lets the API choose. */
  readonly defaultVolumesPageSize: number;
  /** Client-side QPS limit for API calls; 0 means unlimited. */
  readonly apiRateLimit: number;
  readonly validateAttachment: boolean;
  readonly metadataUrl: string;
  readonly byIdDir: string;
}

export interface LocalConfig {
  /** Where volumes, snapshots and their metadata live. */
  readonly dataDir: string;
  /** How much of the data directory's free space may be promised to sparse volumes (1 = no overcommit). */
  readonly overcommitRatio: number;
}

export interface Config {
  readonly driverName: string;
  readonly version: string;
  readonly endpoint: Endpoint;
  readonly socketMode: number;
  readonly shutdownTimeoutMs: number;
  readonly mode: Mode;
  readonly backend: BackendKind;
  /**
   * One instance per node (local backend, --node-deployment): each serves the
   * controller and node services of its own node's pool, with no controller
   * publish and expansion done on the node (see driver/deployment.ts).
   */
  readonly nodeDeployment: boolean;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** host:port for the HTTP debug server (/health, /metrics); empty disables it. */
  readonly debugAddr: string;
  readonly alpha: ReadonlySet<AlphaFeature>;
  /** Node id override; otherwise the host name (local) or the droplet id (DigitalOcean). */
  readonly nodeId: string;
  /** The kubelet's root directory, where mount propagation must work for publications. */
  readonly kubeletDir: string;
  /** max_volumes_per_node reported by NodeGetInfo; 0 means no limit. */
  readonly volumeLimit: number;
  readonly digitalocean: DigitalOceanConfig;
  readonly local: LocalConfig;
}

export function servesController(mode: Mode): boolean {
  return mode !== "node";
}

export function servesNode(mode: Mode): boolean {
  return mode !== "controller";
}

/** Plugin names follow the spec: at most 63 characters, alphanumerics at both ends, dashes, dots and alphanumerics between. */
export function validPluginName(name: string): boolean {
  return name.length <= 63 && /^[a-zA-Z0-9](?:[a-zA-Z0-9.-]*[a-zA-Z0-9])?$/.test(name);
}
