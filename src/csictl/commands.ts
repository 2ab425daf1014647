import { create, type DescMessage, type DescMethod, fromJson, type JsonValue, type Message, toJson } from "@bufbuild/protobuf";
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

/** One unary call: the request from the flags (or --request-json), secrets added where the request has them, the answer as JSON. */
async function unary<I extends DescMessage, O extends DescMessage>(
  ctx: Context,
  method: DescMethod & { input: I; output: O },
  build: () => object,
  invoke: (request: never, options: CallOptions) => Promise<Message>,
): Promise<JsonValue> {
  const request: Message = ctx.requestJson !== undefined ? fromJson(method.input, ctx.requestJson) : create(method.input, build() as never);
  if (method.input.fields.some((f) => f.name === "secrets") && Object.keys(ctx.secrets).length > 0) {
    const withSecrets = request as Message & { secrets: Record<string, string> };
    withSecrets.secrets = { ...ctx.secrets, ...withSecrets.secrets };
  }
  const response = await ctx.progress(method.name, invoke(request as never, ctx.call()));
  return toJson(method.output, response as never, { alwaysEmitImplicit: false });
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

export const COMMANDS: readonly Command[] = [
  {
    path: ["identity", "info"],
    summary: "GetPluginInfo: the plugin's name, version and manifest",
    flags: [],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          I.getPluginInfo,
          () => ({}),
          (r, o) => ctx.clients.identity.getPluginInfo(r, o),
        ),
      );
    },
  },
  {
    path: ["identity", "caps"],
    summary: "GetPluginCapabilities",
    flags: [],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          I.getPluginCapabilities,
          () => ({}),
          (r, o) => ctx.clients.identity.getPluginCapabilities(r, o),
        ),
      );
    },
  },
  {
    path: ["identity", "probe"],
    summary: "Probe: is the plugin ready",
    flags: [],
    async run(ctx) {
      const json = await unary(
        ctx,
        I.probe,
        () => ({}),
        (r, o) => ctx.clients.identity.probe(r, o),
      );
      print(ctx, json, () => (obj(json).ready === false ? "not ready" : "ready"));
    },
  },
  {
    path: ["controller", "caps"],
    summary: "ControllerGetCapabilities",
    flags: [],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          C.controllerGetCapabilities,
          () => ({}),
          (r, o) => ctx.clients.controller.controllerGetCapabilities(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "create"],
    summary:
      "CreateVolume NAME [--size 10Gi] [--limit SIZE] [--fs xfs|--block] [--param k=v] [--mutable-param k=v] [--topology k=v] [--from-snapshot ID|--from-volume ID]",
    flags: ["size", "limit", "param", "mutable-param", "topology", "from-snapshot", "from-volume", ...CAPABILITY_FLAGS],
    async run(ctx) {
      const a = ctx.args;
      const json = await unary(
        ctx,
        C.createVolume,
        () => {
          const size = a.size("size");
          const limit = a.size("limit");
          const fromSnapshot = a.string("from-snapshot");
          const fromVolume = a.string("from-volume");
          const topology = a.map("topology");
          return {
            name: a.positional(0, "volume name"),
            ...(size !== undefined || limit !== undefined ? { capacityRange: { requiredBytes: size ?? 0n, limitBytes: limit ?? 0n } } : {}),
            volumeCapabilities: [capability(a)],
            parameters: a.map("param"),
            mutableParameters: a.map("mutable-param"),
            ...(Object.keys(topology).length > 0
              ? { accessibilityRequirements: { requisite: [{ segments: topology }], preferred: [{ segments: topology }] } }
              : {}),
            ...(fromSnapshot !== undefined
              ? { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: fromSnapshot } } } }
              : fromVolume !== undefined
                ? { volumeContentSource: { type: { case: "volume", value: { volumeId: fromVolume } } } }
                : {}),
          };
        },
        (r, o) => ctx.clients.controller.createVolume(r, o),
      );
      print(ctx, json, () => table(["VOLUME", "SIZE", "PUBLISHED", "CONDITION", "TOPOLOGY"], volumeRows([json]), ctx.style));
    },
  },
  {
    path: ["volume", "delete"],
    summary: "DeleteVolume ID",
    flags: [],
    completes: "volume",
    async run(ctx) {
      await unary(
        ctx,
        C.deleteVolume,
        () => ({ volumeId: ctx.args.positional(0, "volume id") }),
        (r, o) => ctx.clients.controller.deleteVolume(r, o),
      );
      if (ctx.format === "table") ctx.print(`deleted ${ctx.args.positional(0, "volume id")}`);
      else print(ctx, {});
    },
  },
  {
    path: ["volume", "list"],
    summary: "ListVolumes, every page (or --max-entries N --starting-token T); --watch re-polls and prints changes",
    flags: ["max-entries", "starting-token", "watch", "interval"],
    async run(ctx) {
      await listing(
        ctx,
        (maxEntries, startingToken) =>
          unary(
            ctx,
            C.listVolumes,
            () => ({ maxEntries, startingToken }),
            (r, o) => ctx.clients.controller.listVolumes(r, o),
          ),
        "entries",
        (e) => s(obj(obj(e).volume).volumeId),
        ["VOLUME", "SIZE", "PUBLISHED", "CONDITION", "TOPOLOGY"],
        volumeRows,
      );
    },
  },
  {
    path: ["volume", "get"],
    summary: "ControllerGetVolume ID",
    flags: [],
    completes: "volume",
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          C.controllerGetVolume,
          () => ({ volumeId: ctx.args.positional(0, "volume id") }),
          (r, o) => ctx.clients.controller.controllerGetVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "publish"],
    summary: "ControllerPublishVolume ID --node N [--readonly] [--fs|--block] [--volume-context k=v]",
    flags: ["node", "readonly", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    async run(ctx) {
      const a = ctx.args;
      print(
        ctx,
        await unary(
          ctx,
          C.controllerPublishVolume,
          () => ({
            volumeId: a.positional(0, "volume id"),
            nodeId: a.required("node", "the node id NodeGetInfo reports"),
            volumeCapability: capability(a),
            readonly: a.bool("readonly"),
            volumeContext: a.map("volume-context"),
          }),
          (r, o) => ctx.clients.controller.controllerPublishVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "unpublish"],
    summary: "ControllerUnpublishVolume ID [--node N]",
    flags: ["node"],
    completes: "volume",
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          C.controllerUnpublishVolume,
          () => ({ volumeId: ctx.args.positional(0, "volume id"), nodeId: ctx.args.string("node") ?? "" }),
          (r, o) => ctx.clients.controller.controllerUnpublishVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "expand"],
    summary: "ControllerExpandVolume ID --size SIZE [--fs|--block]",
    flags: ["size", "limit", ...CAPABILITY_FLAGS],
    completes: "volume",
    async run(ctx) {
      const a = ctx.args;
      print(
        ctx,
        await unary(
          ctx,
          C.controllerExpandVolume,
          () => ({
            volumeId: a.positional(0, "volume id"),
            capacityRange: { requiredBytes: a.size("size") ?? 0n, limitBytes: a.size("limit") ?? 0n },
            volumeCapability: capability(a),
          }),
          (r, o) => ctx.clients.controller.controllerExpandVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "modify"],
    summary: "ControllerModifyVolume ID --mutable-param k=v",
    flags: ["mutable-param"],
    completes: "volume",
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          C.controllerModifyVolume,
          () => ({ volumeId: ctx.args.positional(0, "volume id"), mutableParameters: ctx.args.map("mutable-param") }),
          (r, o) => ctx.clients.controller.controllerModifyVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "validate"],
    summary: "ValidateVolumeCapabilities ID [--fs|--block] [--access-mode M] [--param k=v]",
    flags: ["param", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    async run(ctx) {
      const a = ctx.args;
      print(
        ctx,
        await unary(
          ctx,
          C.validateVolumeCapabilities,
          () => ({
            volumeId: a.positional(0, "volume id"),
            volumeCapabilities: [capability(a)],
            parameters: a.map("param"),
            volumeContext: a.map("volume-context"),
          }),
          (r, o) => ctx.clients.controller.validateVolumeCapabilities(r, o),
        ),
      );
    },
  },
  {
    path: ["volume", "capacity"],
    summary: "GetCapacity [--param k=v] [--topology k=v] [--fs|--block]",
    flags: ["param", "topology", ...CAPABILITY_FLAGS],
    async run(ctx) {
      const a = ctx.args;
      const topology = a.map("topology");
      print(
        ctx,
        await unary(
          ctx,
          C.getCapacity,
          () => ({
            volumeCapabilities: [capability(a)],
            parameters: a.map("param"),
            ...(Object.keys(topology).length > 0 ? { accessibleTopology: { segments: topology } } : {}),
          }),
          (r, o) => ctx.clients.controller.getCapacity(r, o),
        ),
      );
    },
  },
  {
    path: ["snapshot", "create"],
    summary: "CreateSnapshot NAME --volume ID [--param k=v]",
    flags: ["volume", "param"],
    async run(ctx) {
      const a = ctx.args;
      const json = await unary(
        ctx,
        C.createSnapshot,
        () => ({
          name: a.positional(0, "snapshot name"),
          sourceVolumeId: a.required("volume", "the volume to snapshot"),
          parameters: a.map("param"),
        }),
        (r, o) => ctx.clients.controller.createSnapshot(r, o),
      );
      print(ctx, json, () => table(SNAPSHOT_HEADERS, snapshotRows([obj(json).snapshot]), ctx.style));
    },
  },
  {
    path: ["snapshot", "delete"],
    summary: "DeleteSnapshot ID",
    flags: [],
    completes: "snapshot",
    async run(ctx) {
      await unary(
        ctx,
        C.deleteSnapshot,
        () => ({ snapshotId: ctx.args.positional(0, "snapshot id") }),
        (r, o) => ctx.clients.controller.deleteSnapshot(r, o),
      );
      if (ctx.format === "table") ctx.print(`deleted ${ctx.args.positional(0, "snapshot id")}`);
      else print(ctx, {});
    },
  },
  {
    path: ["snapshot", "list"],
    summary: "ListSnapshots [--volume ID] [--snapshot ID], every page (or --max-entries/--starting-token); --watch",
    flags: ["volume", "snapshot", "max-entries", "starting-token", "watch", "interval"],
    async run(ctx) {
      const sourceVolumeId = ctx.args.string("volume") ?? "";
      const snapshotId = ctx.args.string("snapshot") ?? "";
      await listing(
        ctx,
        (maxEntries, startingToken) =>
          unary(
            ctx,
            C.listSnapshots,
            () => ({ maxEntries, startingToken, sourceVolumeId, snapshotId }),
            (r, o) => ctx.clients.controller.listSnapshots(r, o),
          ),
        "entries",
        (e) => s(obj(obj(e).snapshot).snapshotId),
        SNAPSHOT_HEADERS,
        snapshotRows,
      );
    },
  },
  {
    path: ["snapshot", "get"],
    summary: "GetSnapshot ID",
    flags: [],
    completes: "snapshot",
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          C.getSnapshot,
          () => ({ snapshotId: ctx.args.positional(0, "snapshot id") }),
          (r, o) => ctx.clients.controller.getSnapshot(r, o),
        ),
      );
    },
  },
  {
    path: ["group-snapshot", "caps"],
    summary: "GroupControllerGetCapabilities",
    flags: [],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          G.groupControllerGetCapabilities,
          () => ({}),
          (r, o) => ctx.clients.groupController.groupControllerGetCapabilities(r, o),
        ),
      );
    },
  },
  {
    path: ["group-snapshot", "create"],
    summary: "CreateVolumeGroupSnapshot NAME --volume ID --volume ID ... [--param k=v]",
    flags: ["volume", "param"],
    async run(ctx) {
      const a = ctx.args;
      const json = await unary(
        ctx,
        G.createVolumeGroupSnapshot,
        () => ({ name: a.positional(0, "group snapshot name"), sourceVolumeIds: a.list("volume"), parameters: a.map("param") }),
        (r, o) => ctx.clients.groupController.createVolumeGroupSnapshot(r, o),
      );
      print(ctx, json, () => groupText(json, ctx.style));
    },
  },
  {
    path: ["group-snapshot", "get"],
    summary: "GetVolumeGroupSnapshot ID --snapshot ID ...",
    flags: ["snapshot"],
    async run(ctx) {
      const json = await unary(
        ctx,
        G.getVolumeGroupSnapshot,
        () => ({ groupSnapshotId: ctx.args.positional(0, "group snapshot id"), snapshotIds: ctx.args.list("snapshot") }),
        (r, o) => ctx.clients.groupController.getVolumeGroupSnapshot(r, o),
      );
      print(ctx, json, () => groupText(json, ctx.style));
    },
  },
  {
    path: ["group-snapshot", "delete"],
    summary: "DeleteVolumeGroupSnapshot ID --snapshot ID ...",
    flags: ["snapshot"],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          G.deleteVolumeGroupSnapshot,
          () => ({ groupSnapshotId: ctx.args.positional(0, "group snapshot id"), snapshotIds: ctx.args.list("snapshot") }),
          (r, o) => ctx.clients.groupController.deleteVolumeGroupSnapshot(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "info"],
    summary: "NodeGetInfo",
    flags: [],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          N.nodeGetInfo,
          () => ({}),
          (r, o) => ctx.clients.node.nodeGetInfo(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "caps"],
    summary: "NodeGetCapabilities",
    flags: [],
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          N.nodeGetCapabilities,
          () => ({}),
          (r, o) => ctx.clients.node.nodeGetCapabilities(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "stage"],
    summary: "NodeStageVolume ID --staging-path P [--publish-context k=v] [--volume-context k=v] [--fs|--block] [--mount-flag F]",
    flags: ["staging-path", "publish-context", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    async run(ctx) {
      const a = ctx.args;
      print(
        ctx,
        await unary(
          ctx,
          N.nodeStageVolume,
          () => ({
            volumeId: a.positional(0, "volume id"),
            stagingTargetPath: a.required("staging-path", "where to stage the volume"),
            volumeCapability: capability(a),
            publishContext: a.map("publish-context"),
            volumeContext: a.map("volume-context"),
          }),
          (r, o) => ctx.clients.node.nodeStageVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "unstage"],
    summary: "NodeUnstageVolume ID --staging-path P",
    flags: ["staging-path"],
    completes: "volume",
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          N.nodeUnstageVolume,
          () => ({
            volumeId: ctx.args.positional(0, "volume id"),
            stagingTargetPath: ctx.args.required("staging-path", "where the volume is staged"),
          }),
          (r, o) => ctx.clients.node.nodeUnstageVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "publish"],
    summary:
      "NodePublishVolume ID --target-path P [--staging-path P] [--readonly] [--publish-context k=v] [--volume-context k=v] [--fs|--block]",
    flags: ["target-path", "staging-path", "readonly", "publish-context", "volume-context", ...CAPABILITY_FLAGS],
    completes: "volume",
    async run(ctx) {
      const a = ctx.args;
      print(
        ctx,
        await unary(
          ctx,
          N.nodePublishVolume,
          () => ({
            volumeId: a.positional(0, "volume id"),
            targetPath: a.required("target-path", "where to publish the volume"),
            stagingTargetPath: a.string("staging-path") ?? "",
            readonly: a.bool("readonly"),
            volumeCapability: capability(a),
            publishContext: a.map("publish-context"),
            volumeContext: a.map("volume-context"),
          }),
          (r, o) => ctx.clients.node.nodePublishVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "unpublish"],
    summary: "NodeUnpublishVolume ID --target-path P",
    flags: ["target-path"],
    completes: "volume",
    async run(ctx) {
      print(
        ctx,
        await unary(
          ctx,
          N.nodeUnpublishVolume,
          () => ({
            volumeId: ctx.args.positional(0, "volume id"),
            targetPath: ctx.args.required("target-path", "where the volume is published"),
          }),
          (r, o) => ctx.clients.node.nodeUnpublishVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["node", "stats"],
    summary: "NodeGetVolumeStats ID --path P [--staging-path P]",
    flags: ["path", "staging-path"],
    completes: "volume",
    async run(ctx) {
      const json = await unary(
        ctx,
        N.nodeGetVolumeStats,
        () => ({
          volumeId: ctx.args.positional(0, "volume id"),
          volumePath: ctx.args.required("path", "the volume's target or staging path"),
          stagingTargetPath: ctx.args.string("staging-path") ?? "",
        }),
        (r, o) => ctx.clients.node.nodeGetVolumeStats(r, o),
      );
      print(ctx, json, () => statsText(json, ctx.style));
    },
  },
  {
    path: ["node", "expand"],
    summary: "NodeExpandVolume ID --path P [--size SIZE] [--staging-path P] [--fs|--block]",
    flags: ["path", "staging-path", "size", ...CAPABILITY_FLAGS],
    completes: "volume",
    async run(ctx) {
      const a = ctx.args;
      const size = a.size("size");
      print(
        ctx,
        await unary(
          ctx,
          N.nodeExpandVolume,
          () => ({
            volumeId: a.positional(0, "volume id"),
            volumePath: a.required("path", "the volume's path"),
            stagingTargetPath: a.string("staging-path") ?? "",
            volumeCapability: capability(a),
            ...(size !== undefined ? { capacityRange: { requiredBytes: size } } : {}),
          }),
          (r, o) => ctx.clients.node.nodeExpandVolume(r, o),
        ),
      );
    },
  },
  {
    path: ["metadata", "allocated"],
    summary: "GetMetadataAllocated SNAPSHOT [--starting-offset N] [--max-results N] (alpha SnapshotMetadata)",
    flags: ["starting-offset", "max-results", "security-token"],
    completes: "snapshot",
    async run(ctx) {
      const a = ctx.args;
      const request = {
        snapshotId: a.positional(0, "snapshot id"),
        startingOffset: BigInt(a.integer("starting-offset") ?? 0),
        maxResults: a.integer("max-results") ?? 0,
        securityToken: a.string("security-token") ?? "",
        secrets: ctx.secrets,
      };
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
        startingOffset: BigInt(a.integer("starting-offset") ?? 0),
        maxResults: a.integer("max-results") ?? 0,
        securityToken: a.string("security-token") ?? "",
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

const SNAPSHOT_HEADERS = ["SNAPSHOT", "SOURCE VOLUME", "SIZE", "READY", "CREATED", "GROUP"];

function groupText(json: JsonValue, st: Style): string {
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
