export type StringMap = Record<string, string>;

/** RPCs that carry a `secrets` field. */
export const SECRET_RPCS = [
  "CreateVolume",
  "DeleteVolume",
  "ControllerPublishVolume",
  "ControllerUnpublishVolume",
  "ValidateVolumeCapabilities",
  "ControllerExpandVolume",
  "ControllerModifyVolume",
  "CreateSnapshot",
  "DeleteSnapshot",
  "ListSnapshots",
  "GetSnapshot",
  "NodeStageVolume",
  "NodePublishVolume",
  "NodeExpandVolume",
  "CreateVolumeGroupSnapshot",
  "DeleteVolumeGroupSnapshot",
  "GetVolumeGroupSnapshot",
] as const;

export type SecretRpc = (typeof SECRET_RPCS)[number];

/** Secrets to send: the same map to every RPC, or one map per RPC. */
export type SecretsConfig = Partial<Record<SecretRpc, StringMap>>;

export interface ConformanceOptions {
  /** Identity + Node endpoint (`unix:///path.sock` or `tcp://host:port`). */
  readonly endpoint: string;
  /** Controller endpoint when the controller runs apart; defaults to `endpoint`. */
  readonly controllerEndpoint?: string;
  /** Directory under which staging directories are made (must be on the node). Default: a new directory under the OS temp dir. */
  readonly stagingDir?: string;
  /** Directory under which target paths are made (must be on the node). Default: a new directory under the OS temp dir. */
  readonly targetDir?: string;
  /** CreateVolume parameters (a StorageClass's). */
  readonly parameters?: StringMap;
  /** CreateSnapshot parameters (a VolumeSnapshotClass's). */
  readonly snapshotParameters?: StringMap;
  /** Mutable parameters the driver accepts, for the positive ControllerModifyVolume checks. */
  readonly mutableParameters?: StringMap;
  readonly secrets?: SecretsConfig;
  /** Size of test volumes in bytes; default 1 GiB. */
  readonly testVolumeSize?: bigint;
  /** Size test volumes are expanded to; default twice the volume size. */
  readonly testVolumeExpandSize?: bigint;
  /** fs_type of mount capabilities; default "" (the driver's choice). */
  readonly fsType?: string;
  /** How many times each mutating call is repeated in idempotency checks; default 3. */
  readonly idempotentCount?: number;
  /** Deadline of each RPC; default 2 minutes. */
  readonly rpcTimeoutMs?: number;
  /** Deadline of each check, its cleanup excluded; default 10 minutes. */
  readonly checkTimeoutMs?: number;
  /** Run only checks whose id or title matches. */
  readonly filter?: RegExp;
  /** Leave out checks whose id or title matches. */
  readonly skip?: RegExp;
  /** Report failed SHOULD checks as warnings instead of failures. */
  readonly lenient?: boolean;
  /** A second node id the controller knows, for the published-to-another-node checks. */
  readonly otherNodeId?: string;
  /** Access types to exercise in node round trips; default both. */
  readonly accessTypes?: readonly ("mount" | "block")[];
  /** Do not read or write volume contents through published paths (when the suite does not run on the node). */
  readonly noDataChecks?: boolean;
}

export interface ResolvedOptions {
  readonly endpoint: string;
  readonly controllerEndpoint: string;
  readonly stagingDir: string | undefined;
  readonly targetDir: string | undefined;
  readonly parameters: StringMap;
  readonly snapshotParameters: StringMap;
  readonly mutableParameters: StringMap;
  readonly secrets: SecretsConfig;
  readonly testVolumeSize: bigint;
  readonly testVolumeExpandSize: bigint;
  readonly fsType: string;
  readonly idempotentCount: number;
  readonly rpcTimeoutMs: number;
  readonly checkTimeoutMs: number;
  readonly filter: RegExp | undefined;
  readonly skip: RegExp | undefined;
  readonly lenient: boolean;
  readonly otherNodeId: string | undefined;
  readonly accessTypes: readonly ("mount" | "block")[];
  readonly noDataChecks: boolean;
}

export const GiB = 1024n ** 3n;

export function resolveOptions(options: ConformanceOptions): ResolvedOptions {
  const size = options.testVolumeSize ?? GiB;
  if (size <= 0n) throw new Error("the test volume size must be positive");
  const expandSize = options.testVolumeExpandSize ?? size * 2n;
  if (expandSize <= size) throw new Error("the expansion size must be larger than the test volume size");
  const idempotentCount = options.idempotentCount ?? 3;
  if (!Number.isInteger(idempotentCount) || idempotentCount < 2) throw new Error("the idempotency count must be an integer of at least 2");
  return {
    endpoint: options.endpoint,
    controllerEndpoint: options.controllerEndpoint ?? options.endpoint,
    stagingDir: options.stagingDir,
    targetDir: options.targetDir,
    parameters: { ...options.parameters },
    snapshotParameters: { ...options.snapshotParameters },
    mutableParameters: { ...options.mutableParameters },
    secrets: { ...options.secrets },
    testVolumeSize: size,
    testVolumeExpandSize: expandSize,
    fsType: options.fsType ?? "",
    idempotentCount,
    rpcTimeoutMs: options.rpcTimeoutMs ?? 120_000,
    checkTimeoutMs: options.checkTimeoutMs ?? 600_000,
    filter: options.filter,
    skip: options.skip,
    lenient: options.lenient ?? false,
    otherNodeId: options.otherNodeId,
    accessTypes: options.accessTypes ?? ["mount", "block"],
    noDataChecks: options.noDataChecks ?? false,
  };
}

/** Parse `10Gi`, `512Mi`, `1G`, `1048576` into bytes. */
export function parseSize(text: string): bigint {
  const m = /^(\d+)\s*(|k|ki|m|mi|g|gi|t|ti)b?$/i.exec(text.trim());
  if (!m) throw new Error(`invalid size ${JSON.stringify(text)}: use bytes or a suffix such as 512Mi, 10Gi, 1G`);
  const unit = (m[2] ?? "").toLowerCase();
  const factors: Record<string, bigint> = {
    "": 1n,
    k: 1000n,
    ki: 1024n,
    m: 1000n ** 2n,
    mi: 1024n ** 2n,
    g: 1000n ** 3n,
    gi: 1024n ** 3n,
    t: 1000n ** 4n,
    ti: 1024n ** 4n,
  };
  return BigInt(m[1] ?? "0") * (factors[unit] ?? 1n);
}

/** Parse a secrets document: either `{"key": "value"}` for every RPC, or `{"CreateVolumeSecret": {...}, ...}` per RPC (csi-sanity's keys). */
export function parseSecrets(document: unknown): SecretsConfig {
  if (typeof document !== "object" || document === null || Array.isArray(document))
    throw new Error("the secrets file must hold a JSON object");
  const entries = Object.entries(document);
  if (entries.every(([, value]) => typeof value === "string")) {
    const map = Object.fromEntries(entries) as StringMap;
    return Object.fromEntries(SECRET_RPCS.map((rpc) => [rpc, map]));
  }
  const config: SecretsConfig = {};
  for (const [key, value] of entries) {
    const rpc = key.replace(/Secrets?$/, "").replace(/^ControllerValidateVolumeCapabilities$/, "ValidateVolumeCapabilities");
    if (!(SECRET_RPCS as readonly string[]).includes(rpc))
      throw new Error(`secrets file: unknown key ${JSON.stringify(key)}; use an RPC name such as CreateVolumeSecret`);
    if (typeof value !== "object" || value === null || Object.values(value).some((v) => typeof v !== "string")) {
      throw new Error(`secrets file: ${key} must map secret names to string values`);
    }
    config[rpc as SecretRpc] = value as StringMap;
  }
  return config;
}
