import { create, type DescMessage, type DescMethodUnary, fromJson, type JsonValue, type Message, toJson } from "@bufbuild/protobuf";
import type { CallOptions } from "@connectrpc/connect";
import type { CsiClients } from "../csi/client.js";
import {
  Controller,
  GroupController,
  Identity,
  Node,
  SnapshotMetadata,
  VolumeCapability_AccessMode_Mode as AccessMode,
} from "../gen/csi/v1/csi_pb.js";
import { type Args, UsageError } from "./args.js";
import { humanSize, keyValues, localTime, type OutputFormat, render, type Style, table } from "./output.js";

/**
 * Every command of csictl: one per CSI RPC (flags named after the request's
 * fields), `describe`, and `call` for any request given as JSON. Each builds a
 * request, makes one call (or pages through a listing), and prints the answer
 * as a table or as JSON/YAML.
 */

export interface Context {
  readonly args: Args;
  readonly clients: CsiClients;
  readonly format: OutputFormat;
  readonly style: Style;
  readonly secrets: Record<string, string>;
  /** `--request-json`: the request as protobuf JSON, replacing what the flags would build. */
  readonly requestJson: JsonValue | undefined;
  /** Options for one call: the deadline and Ctrl-C. */
  call(): CallOptions;
  /** Run a call, showing on a terminal what is being waited on and for how long. */
  progress<T>(what: string, run: Promise<T>): Promise<T>;
  print(text: string): void;
  readonly signal: AbortSignal;
}

export interface Command {
  readonly path: readonly string[];
  readonly summary: string;
  /** Flags the command reads (for help and completion). */
  readonly flags: readonly string[];
  /** What the first positional is, when ids of that kind can be completed. */
  readonly completes?: "volume" | "snapshot";
  run(ctx: Context): Promise<void>;
}

const ACCESS_MODES: Record<string, AccessMode> = {
  "single-node-writer": AccessMode.SINGLE_NODE_WRITER,
  "single-node-reader-only": AccessMode.SINGLE_NODE_READER_ONLY,
  "multi-node-reader-only": AccessMode.MULTI_NODE_READER_ONLY,
  "multi-node-single-writer": AccessMode.MULTI_NODE_SINGLE_WRITER,
  "multi-node-multi-writer": AccessMode.MULTI_NODE_MULTI_WRITER,
  "single-node-single-writer": AccessMode.SINGLE_NODE_SINGLE_WRITER,
  "single-node-multi-writer": AccessMode.SINGLE_NODE_MULTI_WRITER,
};

/** The volume capability the flags describe: `--block`, or a mount with `--fs` and `--mount-flag`; `--access-mode`. */
function capability(args: Args) {
  const modeName = args.string("access-mode") ?? "single-node-writer";
  const mode = ACCESS_MODES[modeName];
  if (mode === undefined) throw new UsageError(`--access-mode takes one of ${Object.keys(ACCESS_MODES).join(", ")}`);
  const accessMode = { mode };
  if (args.bool("block")) return { accessType: { case: "block" as const, value: {} }, accessMode };
  return {
    accessType: { case: "mount" as const, value: { fsType: args.string("fs") ?? "", mountFlags: args.list("mount-flag") } },
    accessMode,
  };
}
const CAPABILITY_FLAGS = ["block", "fs", "mount-flag", "access-mode"];

/**
 * One unary call of any method: the request from the flags (or --request-json), secrets added where the
 * request has a secrets field, the answer as protobuf JSON.
 */
export async function unary(ctx: Context, method: DescMethodUnary, build: () => object): Promise<JsonValue> {
  const request: Message = ctx.requestJson !== undefined ? fromJson(method.input, ctx.requestJson) : create(method.input, build() as never);
  if (method.input.fields.some((f) => f.name === "secrets") && Object.keys(ctx.secrets).length > 0) {
    const withSecrets = request as Message & { secrets: Record<string, string> };
    withSecrets.secrets = { ...ctx.secrets, ...withSecrets.secrets };
  }
  const { signal, timeoutMs } = ctx.call();
  const response = await ctx.progress(method.name, ctx.clients.transport.unary(method, signal, timeoutMs, undefined, request, undefined));
  return toJson(method.output, response.message, { alwaysEmitImplicit: false });
}

type Row = readonly string[];
const s = (v: unknown) => (v === undefined || v === null ? "" : String(v));
const obj = (v: unknown): Record<string, unknown> => (v !== null && typeof v === "object" ? (v as Record<string, unknown>) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function volumeRows(entries: unknown[]): Row[] {
  return entries.map((e) => {
    const volume = obj(obj(e).volume);
    const status = obj(obj(e).status);
    const topology = arr(volume.accessibleTopology)
      .map((t) =>
        Object.entries(obj(obj(t).segments))
          .map(([k, v]) => `${k}=${s(v)}`)
          .join(","),
      )
      .join(" ");
    const condition = obj(status.volumeCondition);
    return [
      s(volume.volumeId),
      volume.capacityBytes === undefined ? "" : humanSize(s(volume.capacityBytes)),
      arr(status.publishedNodeIds).map(s).join(","),
      condition.abnormal === true ? `abnormal: ${s(condition.message)}` : status.volumeCondition ? "ok" : "",
      topology,
    ];
  });
}

function snapshotRows(entries: unknown[]): Row[] {
  return entries.map((e) => {
    const snapshot = obj(obj(e).snapshot ?? e);
    return [
      s(snapshot.snapshotId),
      s(snapshot.sourceVolumeId),
      snapshot.sizeBytes === undefined ? "" : humanSize(s(snapshot.sizeBytes)),
      snapshot.readyToUse === true ? "yes" : "no",
      localTime(snapshot.creationTime),
      s(snapshot.groupSnapshotId),
    ];
  });
}

/** Page through a listing (or one page with --max-entries/--starting-token); with --watch, re-poll and print changes. */
async function listing(
  ctx: Context,
  fetchPage: (maxEntries: number, token: string) => Promise<JsonValue>,
  kind: "entries",
  key: (entry: unknown) => string,
  headers: readonly string[],
  rows: (entries: unknown[]) => Row[],
): Promise<void> {
  const maxEntries = ctx.args.integer("max-entries");
  const startingToken = ctx.args.string("starting-token");
  const watch = ctx.args.bool("watch");
  const intervalMs = Number(ctx.args.string("interval") ?? "2") * 1000;
  const all = async (): Promise<{ entries: unknown[]; nextToken: string }> => {
    if (maxEntries !== undefined || startingToken !== undefined) {
      const page = obj(await fetchPage(maxEntries ?? 0, startingToken ?? ""));
      return { entries: arr(page[kind]), nextToken: s(page.nextToken) };
    }
    const entries: unknown[] = [];
    let token = "";
    for (let pages = 0; pages < 100_000; pages++) {
      const page = obj(await fetchPage(0, token));
      entries.push(...arr(page[kind]));
      token = s(page.nextToken);
      if (token === "") break;
    }
    return { entries, nextToken: "" };
  };
  let previous: Map<string, string> | undefined;
  for (;;) {
    const { entries, nextToken } = await all();
    const current = new Map(entries.map((e) => [key(e), JSON.stringify(e)]));
    if (previous === undefined) {
      const json = { [kind]: entries, ...(nextToken ? { nextToken } : {}) };
      ctx.print(render(ctx.format, json, () => table(headers, rows(entries), ctx.style) + (nextToken ? `\nnext token: ${nextToken}` : "")));
    } else {
      for (const [id, text] of current) {
        const before = previous.get(id);
        if (before === undefined) ctx.print(ctx.style.green(`+ ${id}`));
        else if (before !== text) ctx.print(`~ ${id}`);
      }
      for (const id of previous.keys()) if (!current.has(id)) ctx.print(ctx.style.red(`- ${id}`));
    }
    if (!watch) return;
    previous = current;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, intervalMs);
      ctx.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (ctx.signal.aborted) return;
  }
}

/** The answer as asked; an empty answer (most Node RPCs) reads "ok" in a table. */
const print = (ctx: Context, json: JsonValue, text?: () => string) =>
  ctx.print(render(ctx.format, json, text ?? (() => (Object.keys(obj(json)).length === 0 ? "ok" : keyValues(json)))));

const C = Controller.method;
const N = Node.method;
const G = GroupController.method;
const I = Identity.method;

const VOLUME_HEADERS = ["VOLUME", "SIZE", "PUBLISHED", "CONDITION", "TOPOLOGY"];

/** A command that makes one call: the request from its flags, the answer printed as a table (`show`) or key: value lines. */
function rpc(spec: {
  readonly path: readonly string[];
  readonly summary: string;
  readonly method: DescMethodUnary;
  readonly flags?: readonly string[];
  readonly completes?: "volume" | "snapshot";
  readonly request?: (a: Args) => object;
  readonly show?: (json: JsonValue, st: Style) => string;
}): Command {
  return {
    path: spec.path,
    summary: spec.summary,
    flags: spec.flags ?? [],
    ...(spec.completes ? { completes: spec.completes } : {}),
    async run(ctx) {
      const json = await unary(ctx, spec.method, () => spec.request?.(ctx.args) ?? {});
      const show = spec.show;
      print(ctx, json, show ? () => show(json, ctx.style) : undefined);
    },
  };
}

const volumeId = (a: Args) => a.positional(0, "volume id");
const snapshotId = (a: Args) => a.positional(0, "snapshot id");

function createVolumeRequest(a: Args): object {
  const size = a.size("size");
  const limit = a.size("limit");
  const fromSnapshot = a.string("from-snapshot");
  const fromVolume = a.string("from-volume");
  const topology = a.map("topology");
  const source =
    fromSnapshot !== undefined
      ? { type: { case: "snapshot", value: { snapshotId: fromSnapshot } } }
      : fromVolume !== undefined
        ? { type: { case: "volume", value: { volumeId: fromVolume } } }
        : undefined;
  return {
    name: a.positional(0, "volume name"),
    ...(size !== undefined || limit !== undefined ? { capacityRange: { requiredBytes: size ?? 0n, limitBytes: limit ?? 0n } } : {}),
    volumeCapabilities: [capability(a)],
    parameters: a.map("param"),
    mutableParameters: a.map("mutable-param"),
    ...(Object.keys(topology).length > 0
      ? { accessibilityRequirements: { requisite: [{ segments: topology }], preferred: [{ segments: topology }] } }
      : {}),
    ...(source ? { volumeContentSource: source } : {}),
  };
}

/** Deleting prints what it deleted (the answer is empty). */
function deletion(
  path: readonly string[],
  summary: string,
  method: DescMethodUnary,
  completes: "volume" | "snapshot",
  request: (a: Args) => object,
): Command {
  return {
    path,
    summary,
    flags: [],
    completes,
    async run(ctx) {
      await unary(ctx, method, () => request(ctx.args));
      if (ctx.format === "table") ctx.print(`deleted ${ctx.args.positional(0, `${completes} id`)}`);
      else print(ctx, {});
    },
  };
}

export const COMMANDS: readonly Command[] = [
  rpc({ path: ["identity", "info"], summary: "GetPluginInfo: the plugin's name, version and manifest", method: I.getPluginInfo }),
  rpc({ path: ["identity", "caps"], summary: "GetPluginCapabilities", method: I.getPluginCapabilities }),
  rpc({
    path: ["identity", "probe"],
    summary: "Probe: is the plugin ready",
    method: I.probe,
    show: (json) => (obj(json).ready === false ? "not ready" : "ready"),
  }),
  rpc({ path: ["controller", "caps"], summary: "ControllerGetCapabilities", method: C.controllerGetCapabilities }),
  rpc({
    path: ["volume", "create"],
    summary:
      "CreateVolume NAME [--size 10Gi] [--limit SIZE] [--fs xfs|--block] [--param k=v] [--mutable-param k=v] [--topology k=v] [--from-snapshot ID|--from-volume ID]",
    method: C.createVolume,
    flags: ["size", "limit", "param", "mutable-param", "topology", "from-snapshot", "from-volume", ...CAPABILITY_FLAGS],
    request: createVolumeRequest,
    show: (json, st) => table(VOLUME_HEADERS, volumeRows([json]), st),
  }),
  deletion(["volume", "delete"], "DeleteVolume ID", C.deleteVolume, "volume", (a) => ({ volumeId: volumeId(a) })),
  {
    path: ["volume", "list"],
    summary: "ListVolumes, every page (or --max-entries N --starting-token T); --watch re-polls and prints changes",
    flags: ["max-entries", "starting-token", "watch", "interval"],
    async run(ctx) {
      await listing(
        ctx,
        (maxEntries, startingToken) => unary(ctx, C.listVolumes, () => ({ maxEntries, startingToken })),
        "entries",
        (e) => s(obj(obj(e).volume).volumeId),
        VOLUME_HEADERS,
        volumeRows,
      );
    },
  },
  rpc({
    path: ["volume", "get"],
    summary: "ControllerGetVolume ID",
    method: C.controllerGetVolume,
    completes: "volume",
    request: (a) => ({ volumeId: volumeId(a) }),
  }),
  rpc({
    path: ["volume", "publish"],
    summary: "ControllerPublishVolume ID --node N [--readonly] [--fs|--block] [--volume-context k=v]",
    method: C.controllerPublishVolume,
    flags: ["node", "readonly", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    request: (a) => ({
      volumeId: volumeId(a),
      nodeId: a.required("node", "the node id NodeGetInfo reports"),
      volumeCapability: capability(a),
      readonly: a.bool("readonly"),
      volumeContext: a.map("volume-context"),
    }),
  }),
  rpc({
    path: ["volume", "unpublish"],
    summary: "ControllerUnpublishVolume ID [--node N]",
    method: C.controllerUnpublishVolume,
    flags: ["node"],
    completes: "volume",
    request: (a) => ({ volumeId: volumeId(a), nodeId: a.string("node") ?? "" }),
  }),
  rpc({
    path: ["volume", "expand"],
    summary: "ControllerExpandVolume ID --size SIZE [--fs|--block]",
    method: C.controllerExpandVolume,
    flags: ["size", "limit", ...CAPABILITY_FLAGS],
    completes: "volume",
    request: (a) => ({
      volumeId: volumeId(a),
      capacityRange: { requiredBytes: a.size("size") ?? 0n, limitBytes: a.size("limit") ?? 0n },
      volumeCapability: capability(a),
    }),
  }),
  rpc({
    path: ["volume", "modify"],
    summary: "ControllerModifyVolume ID --mutable-param k=v",
    method: C.controllerModifyVolume,
    flags: ["mutable-param"],
    completes: "volume",
    request: (a) => ({ volumeId: volumeId(a), mutableParameters: a.map("mutable-param") }),
  }),
  rpc({
    path: ["volume", "validate"],
    summary: "ValidateVolumeCapabilities ID [--fs|--block] [--access-mode M] [--param k=v]",
    method: C.validateVolumeCapabilities,
    flags: ["param", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    request: (a) => ({
      volumeId: volumeId(a),
      volumeCapabilities: [capability(a)],
      parameters: a.map("param"),
      volumeContext: a.map("volume-context"),
    }),
  }),
  rpc({
    path: ["volume", "capacity"],
    summary: "GetCapacity [--param k=v] [--topology k=v] [--fs|--block]",
    method: C.getCapacity,
    flags: ["param", "topology", ...CAPABILITY_FLAGS],
    request: (a) => {
      const topology = a.map("topology");
      return {
        volumeCapabilities: [capability(a)],
        parameters: a.map("param"),
        ...(Object.keys(topology).length > 0 ? { accessibleTopology: { segments: topology } } : {}),
      };
    },
  }),
  rpc({
    path: ["snapshot", "create"],
    summary: "CreateSnapshot NAME --volume ID [--param k=v]",
    method: C.createSnapshot,
    flags: ["volume", "param"],
    request: (a) => ({
      name: a.positional(0, "snapshot name"),
      sourceVolumeId: a.required("volume", "the volume to snapshot"),
      parameters: a.map("param"),
    }),
    show: (json, st) => table(SNAPSHOT_HEADERS, snapshotRows([obj(json).snapshot]), st),
  }),
  deletion(["snapshot", "delete"], "DeleteSnapshot ID", C.deleteSnapshot, "snapshot", (a) => ({ snapshotId: snapshotId(a) })),
  {
    path: ["snapshot", "list"],
    summary: "ListSnapshots [--volume ID] [--snapshot ID], every page (or --max-entries/--starting-token); --watch",
    flags: ["volume", "snapshot", "max-entries", "starting-token", "watch", "interval"],
    async run(ctx) {
      const sourceVolumeId = ctx.args.string("volume") ?? "";
      const onlySnapshot = ctx.args.string("snapshot") ?? "";
      await listing(
        ctx,
        (maxEntries, startingToken) =>
          unary(ctx, C.listSnapshots, () => ({ maxEntries, startingToken, sourceVolumeId, snapshotId: onlySnapshot })),
        "entries",
        (e) => s(obj(obj(e).snapshot).snapshotId),
        SNAPSHOT_HEADERS,
        snapshotRows,
      );
    },
  },
  rpc({
    path: ["snapshot", "get"],
    summary: "GetSnapshot ID",
    method: C.getSnapshot,
    completes: "snapshot",
    request: (a) => ({ snapshotId: snapshotId(a) }),
  }),
  rpc({ path: ["group-snapshot", "caps"], summary: "GroupControllerGetCapabilities", method: G.groupControllerGetCapabilities }),
  rpc({
    path: ["group-snapshot", "create"],
    summary: "CreateVolumeGroupSnapshot NAME --volume ID --volume ID ... [--param k=v]",
    method: G.createVolumeGroupSnapshot,
    flags: ["volume", "param"],
    request: (a) => ({ name: a.positional(0, "group snapshot name"), sourceVolumeIds: a.list("volume"), parameters: a.map("param") }),
    show: groupText,
  }),
  rpc({
    path: ["group-snapshot", "get"],
    summary: "GetVolumeGroupSnapshot ID --snapshot ID ...",
    method: G.getVolumeGroupSnapshot,
    flags: ["snapshot"],
    request: (a) => ({ groupSnapshotId: a.positional(0, "group snapshot id"), snapshotIds: a.list("snapshot") }),
    show: groupText,
  }),
  rpc({
    path: ["group-snapshot", "delete"],
    summary: "DeleteVolumeGroupSnapshot ID --snapshot ID ...",
    method: G.deleteVolumeGroupSnapshot,
    flags: ["snapshot"],
    request: (a) => ({ groupSnapshotId: a.positional(0, "group snapshot id"), snapshotIds: a.list("snapshot") }),
  }),
  rpc({ path: ["node", "info"], summary: "NodeGetInfo", method: N.nodeGetInfo }),
  rpc({ path: ["node", "caps"], summary: "NodeGetCapabilities", method: N.nodeGetCapabilities }),
  rpc({
    path: ["node", "stage"],
    summary: "NodeStageVolume ID --staging-path P [--publish-context k=v] [--volume-context k=v] [--fs|--block] [--mount-flag F]",
    method: N.nodeStageVolume,
    flags: ["staging-path", "publish-context", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    request: (a) => ({
      volumeId: volumeId(a),
      stagingTargetPath: a.required("staging-path", "where to stage the volume"),
      volumeCapability: capability(a),
      publishContext: a.map("publish-context"),
      volumeContext: a.map("volume-context"),
    }),
  }),
  rpc({
    path: ["node", "unstage"],
    summary: "NodeUnstageVolume ID --staging-path P",
    method: N.nodeUnstageVolume,
    flags: ["staging-path"],
    completes: "volume",
    request: (a) => ({ volumeId: volumeId(a), stagingTargetPath: a.required("staging-path", "where the volume is staged") }),
  }),
  rpc({
    path: ["node", "publish"],
    summary:
      "NodePublishVolume ID --target-path P [--staging-path P] [--readonly] [--publish-context k=v] [--volume-context k=v] [--fs|--block]",
    method: N.nodePublishVolume,
    flags: ["target-path", "staging-path", "readonly", "publish-context", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    request: (a) => ({
      volumeId: volumeId(a),
      targetPath: a.required("target-path", "where to publish the volume"),
      stagingTargetPath: a.string("staging-path") ?? "",
      readonly: a.bool("readonly"),
      volumeCapability: capability(a),
      publishContext: a.map("publish-context"),
      volumeContext: a.map("volume-context"),
    }),
  }),
  rpc({
    path: ["node", "unpublish"],
    summary: "NodeUnpublishVolume ID --target-path P",
    method: N.nodeUnpublishVolume,
    flags: ["target-path"],
    completes: "volume",
    request: (a) => ({ volumeId: volumeId(a), targetPath: a.required("target-path", "where the volume is published") }),
  }),
  rpc({
    path: ["node", "stats"],
    summary: "NodeGetVolumeStats ID --path P [--staging-path P]",
    method: N.nodeGetVolumeStats,
    flags: ["path", "staging-path"],
    completes: "volume",
    request: (a) => ({
      volumeId: volumeId(a),
      volumePath: a.required("path", "the volume's target or staging path"),
      stagingTargetPath: a.string("staging-path") ?? "",
    }),
    show: statsText,
  }),
  rpc({
    path: ["node", "expand"],
    summary: "NodeExpandVolume ID --path P [--size SIZE] [--staging-path P] [--fs|--block]",
    method: N.nodeExpandVolume,
    flags: ["path", "staging-path", "size", ...CAPABILITY_FLAGS],
    completes: "volume",
    request: (a) => {
      const size = a.size("size");
      return {
        volumeId: volumeId(a),
        volumePath: a.required("path", "the volume's path"),
        stagingTargetPath: a.string("staging-path") ?? "",
        volumeCapability: capability(a),
        ...(size !== undefined ? { capacityRange: { requiredBytes: size } } : {}),
      };
    },
  }),
  {
    path: ["metadata", "allocated"],
    summary: "GetMetadataAllocated SNAPSHOT [--starting-offset N] [--max-results N] (alpha SnapshotMetadata)",
    flags: ["starting-offset", "max-results", "security-token"],
    completes: "snapshot",
    async run(ctx) {
      const a = ctx.args;
      const request = { snapshotId: snapshotId(a), ...streamOptions(a), secrets: ctx.secrets };
      await streamRanges(
        ctx,
        "GetMetadataAllocated",
        ctx.clients.snapshotMetadata.getMetadataAllocated(request, ctx.call()),
        SnapshotMetadata.method.getMetadataAllocated.output,
      );
    },
  },
  {
    path: ["metadata", "delta"],
    summary: "GetMetadataDelta BASE TARGET [--starting-offset N] [--max-results N] (alpha SnapshotMetadata)",
    flags: ["starting-offset", "max-results", "security-token"],
    completes: "snapshot",
    async run(ctx) {
      const a = ctx.args;
      const request = {
        baseSnapshotId: a.positional(0, "base snapshot id"),
        targetSnapshotId: a.positional(1, "target snapshot id"),
        ...streamOptions(a),
        secrets: ctx.secrets,
      };
      await streamRanges(
        ctx,
        "GetMetadataDelta",
        ctx.clients.snapshotMetadata.getMetadataDelta(request, ctx.call()),
        SnapshotMetadata.method.getMetadataDelta.output,
      );
    },
  },
];

function streamOptions(a: Args) {
  return {
    startingOffset: BigInt(a.integer("starting-offset") ?? 0),
    maxResults: a.integer("max-results") ?? 0,
    securityToken: a.string("security-token") ?? "",
  };
}

const SNAPSHOT_HEADERS = ["SNAPSHOT", "SOURCE VOLUME", "SIZE", "READY", "CREATED", "GROUP"];

export function groupText(json: JsonValue, st: Style): string {
  const group = obj(obj(json).groupSnapshot);
  return `${st.bold("group")} ${s(group.groupSnapshotId)}  ready: ${group.readyToUse === true ? "yes" : "no"}  created: ${localTime(group.creationTime)}\n${table(SNAPSHOT_HEADERS, snapshotRows(arr(group.snapshots)), st)}`;
}

export function statsText(json: JsonValue, st: Style): string {
  const usage = arr(obj(json).usage).map((u) => {
    const x = obj(u);
    const unit = s(x.unit) === "INODES" ? (v: unknown) => s(v ?? 0) : (v: unknown) => humanSize(s(v ?? 0));
    return [s(x.unit), unit(x.total), unit(x.used), unit(x.available)];
  });
  const condition = obj(obj(json).volumeCondition);
  return `${table(["UNIT", "TOTAL", "USED", "AVAILABLE"], usage, st)}${obj(json).volumeCondition ? `\ncondition: ${condition.abnormal === true ? st.red(`abnormal: ${s(condition.message)}`) : "ok"}` : ""}`;
}

async function streamRanges(ctx: Context, what: string, stream: AsyncIterable<Message>, schema: DescMessage): Promise<void> {
  const messages: JsonValue[] = [];
  const rows: Row[] = [];
  await ctx.progress(
    what,
    (async () => {
      for await (const message of stream) {
        const json = toJson(schema, message as never, { alwaysEmitImplicit: false });
        messages.push(json);
        for (const b of arr(obj(json).blockMetadata)) rows.push([s(obj(b).byteOffset ?? "0"), humanSize(s(obj(b).sizeBytes))]);
      }
    })(),
  );
  print(ctx, messages, () => table(["OFFSET", "SIZE"], rows, ctx.style));
}
