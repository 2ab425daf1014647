import { readFileSync } from "node:fs";
import { type DescMethod, type DescMethodUnary, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectCsi, type CsiClients } from "../csi/client.js";
import {
  Controller,
  ControllerServiceCapability_RPC_Type,
  GroupController,
  Identity,
  ListVolumesResponse_EntrySchema,
  Node,
  SnapshotMetadata,
} from "../gen/csi/v1/csi_pb.js";
import { parseEndpoint } from "../util/endpoint.js";
import { Args, loadSecrets, parseArgs, UsageError } from "./args.js";
import { COMMANDS, type Command, type Context, statsText } from "./commands.js";
import { completionScript, completions } from "./completion.js";
import { colorsWanted, humanSize, keyValues, localTime, parseOutputFormat, render, style, table } from "./output.js";

/**
 * csictl: a command-line client for every CSI v1.12 call, on any plugin's
 * endpoint. Exit status: 0 on success, the gRPC code (1-16) of a failed call,
 * 64 for a usage error, 130 when interrupted (Ctrl-C cancels the call on the
 * wire). Global flags: --endpoint (or CSI_ENDPOINT), --output table|json|yaml,
 * --timeout (seconds, default 120; 0 for none), --secrets-file,
 * --request-json FILE|-, --no-color.
 */

export const EXIT_USAGE = 64;
export const EXIT_INTERRUPTED = 130;

const GLOBAL_FLAGS = ["endpoint", "output", "timeout", "secrets-file", "request-json", "no-color", "help"];

function usage(): string {
  const lines = [
    "usage: csictl [--endpoint unix:///path/csi.sock|tcp://host:port] [--output table|json|yaml] [--timeout SECONDS] COMMAND ...",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.path.join(" ").padEnd(24)} ${c.summary}`),
    `  ${"describe ID".padEnd(24)} everything the plugin says about a volume: its entry, snapshots, publications, stats (--path P)`,
    `  ${"call SERVICE METHOD".padEnd(24)} any RPC, the request from --request-json FILE|- (protobuf JSON), e.g. call Controller ListVolumes`,
    `  ${"completion bash|zsh".padEnd(24)} shell completion script: source <(csictl completion bash)`,
    "",
    "secrets: --secrets-file FILE (JSON or key=value lines), CSI_SECRETS, CSI_SECRET_<KEY>; never from the command line.",
    "exit status: 0 ok, 1-16 the gRPC code of a failed call, 64 usage error, 130 interrupted.",
  ];
  return lines.join("\n");
}

const SERVICES = { Identity, Controller, Node, GroupController, SnapshotMetadata } as const;

function isUnary(method: DescMethod): method is DescMethodUnary {
  return method.methodKind === "unary";
}

/** `call SERVICE METHOD`: any unary RPC from protobuf JSON. */
async function genericCall(ctx: Context): Promise<void> {
  const serviceName = ctx.args.positional(0, "service (Identity, Controller, Node, GroupController)");
  const methodName = ctx.args.positional(1, "method, e.g. ListVolumes");
  const service = SERVICES[serviceName as keyof typeof SERVICES];
  if (!service) throw new UsageError(`unknown service ${serviceName}: one of ${Object.keys(SERVICES).join(", ")}`);
  const method = service.methods.find((m) => m.name === methodName);
  if (!method) throw new UsageError(`${serviceName} has no method ${methodName}: ${service.methods.map((m) => m.name).join(", ")}`);
  if (!isUnary(method)) throw new UsageError(`${methodName} streams: use the metadata commands`);
  const unaryMethod = method;
  const request = fromJson(method.input, ctx.requestJson ?? {});
  if (method.input.fields.some((f) => f.name === "secrets") && Object.keys(ctx.secrets).length > 0) {
    (request as unknown as { secrets: Record<string, string> }).secrets = { ...ctx.secrets };
  }
  const response = await ctx.progress(
    method.name,
    ctx.clients.transport.unary(unaryMethod, ctx.signal, ctx.call().timeoutMs, undefined, request, undefined),
  );
  const json = toJson(method.output, response.message, { alwaysEmitImplicit: false });
  ctx.print(render(ctx.format, json, () => keyValues(json)));
}

/** `describe ID`: the volume's entry (ControllerGetVolume, or its ListVolumes entry), its snapshots, its stats. */
async function describe(ctx: Context): Promise<void> {
  const volumeId = ctx.args.positional(0, "volume id");
  const path = ctx.args.string("path");
  const out: Record<string, JsonValue> = {};
  const caps = await ctx.progress("ControllerGetCapabilities", ctx.clients.controller.controllerGetCapabilities({}, ctx.call()));
  const has = (t: ControllerServiceCapability_RPC_Type) => caps.capabilities.some((c) => c.type.case === "rpc" && c.type.value.type === t);
  if (has(ControllerServiceCapability_RPC_Type.GET_VOLUME)) {
    const got = await ctx.progress("ControllerGetVolume", ctx.clients.controller.controllerGetVolume({ volumeId }, ctx.call()));
    out.volume = toJson(Controller.method.controllerGetVolume.output, got, { alwaysEmitImplicit: false });
  } else if (has(ControllerServiceCapability_RPC_Type.LIST_VOLUMES)) {
    let token = "";
    do {
      const page = await ctx.progress("ListVolumes", ctx.clients.controller.listVolumes({ startingToken: token }, ctx.call()));
      const entry = page.entries.find((e) => e.volume?.volumeId === volumeId);
      if (entry) out.volume = toJson(ListVolumesResponse_EntrySchema, entry, { alwaysEmitImplicit: false });
      token = page.nextToken;
    } while (token !== "" && out.volume === undefined);
    if (out.volume === undefined) throw new ConnectError(`volume ${volumeId} is not listed by ListVolumes`, Code.NotFound);
  }
  if (has(ControllerServiceCapability_RPC_Type.LIST_SNAPSHOTS)) {
    const snapshots = await ctx.progress("ListSnapshots", ctx.clients.controller.listSnapshots({ sourceVolumeId: volumeId }, ctx.call()));
    out.snapshots = toJson(Controller.method.listSnapshots.output, snapshots, { alwaysEmitImplicit: false });
  }
  if (path !== undefined) {
    const stats = await ctx.progress("NodeGetVolumeStats", ctx.clients.node.nodeGetVolumeStats({ volumeId, volumePath: path }, ctx.call()));
    out.stats = toJson(Node.method.nodeGetVolumeStats.output, stats, { alwaysEmitImplicit: false });
  }
  ctx.print(
    render(ctx.format, out, () => {
      const st = ctx.style;
      const volume = (out.volume ?? {}) as { volume?: Record<string, unknown>; status?: Record<string, unknown> };
      const v = volume.volume ?? {};
      const lines = [
        `${st.bold("volume")}     ${String(v.volumeId ?? volumeId)}`,
        `${st.bold("size")}       ${v.capacityBytes !== undefined ? humanSize(String(v.capacityBytes)) : "?"}`,
        `${st.bold("published")}  ${((volume.status?.publishedNodeIds as string[] | undefined) ?? []).join(", ") || "nowhere (or not reported)"}`,
      ];
      const condition = volume.status?.volumeCondition as { abnormal?: boolean; message?: string } | undefined;
      if (condition) lines.push(`${st.bold("condition")}  ${condition.abnormal ? st.red(`abnormal: ${condition.message ?? ""}`) : "ok"}`);
      if (v.volumeContext) lines.push(`${st.bold("context")}    ${JSON.stringify(v.volumeContext)}`);
      const entries = ((out.snapshots as { entries?: { snapshot?: Record<string, unknown> }[] } | undefined)?.entries ?? []).map(
        (e) => e.snapshot ?? {},
      );
      lines.push(
        "",
        st.bold("snapshots"),
        entries.length === 0
          ? "  none"
          : table(
              ["SNAPSHOT", "SIZE", "READY", "CREATED"],
              entries.map((e) => [
                String(e.snapshotId),
                humanSize(String(e.sizeBytes ?? 0)),
                e.readyToUse === true ? "yes" : "no",
                localTime(e.creationTime),
              ]),
              st,
            ),
      );
      if (out.stats) lines.push("", st.bold("stats"), statsText(out.stats, st));
      return lines.join("\n");
    }),
  );
}

function findCommand(positionals: readonly string[]): { command: Command; rest: string[] } | undefined {
  for (const command of COMMANDS) {
    if (command.path.every((part, i) => positionals[i] === part)) return { command, rest: positionals.slice(command.path.length) };
  }
  return undefined;
}

/** Shows, on a terminal, what is being waited on and for how long; silent elsewhere. */
function progressReporter(stream: NodeJS.WriteStream) {
  return async <T>(what: string, run: Promise<T>): Promise<T> => {
    if (stream.isTTY !== true) return run;
    const started = Date.now();
    const frames = ["|", "/", "-", "\\"];
    let frame = 0;
    let shown = false;
    const timer = setInterval(() => {
      shown = true;
      stream.write(
        `\r\u001b[2K${frames[frame++ % frames.length] ?? ""} waiting for ${what}: ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }, 100);
    try {
      return await run;
    } finally {
      clearInterval(timer);
      if (shown) stream.write("\r\u001b[2K");
    }
  };
}

export async function main(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  // A half-typed line: completed as it is, never parsed strictly.
  if (argv[0] === "__complete") return completions(argv.slice(1), env);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`csictl: ${(err as Error).message}\n`);
    return EXIT_USAGE;
  }
  const [first, second] = parsed.positionals;
  if (first === "completion") {
    if (second !== "bash" && second !== "zsh") {
      process.stderr.write("csictl: completion takes bash or zsh\n");
      return EXIT_USAGE;
    }
    process.stdout.write(completionScript(second));
    return 0;
  }
  if (first === undefined || parsed.flags.has("help") || first === "help") {
    process.stdout.write(`${usage()}\n`);
    return first === undefined && !parsed.flags.has("help") ? EXIT_USAGE : 0;
  }

  const args = new Args({ positionals: [], flags: parsed.flags });
  let clients: CsiClients | undefined;
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    abort.abort(new Error("interrupted"));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const endpoint = args.string("endpoint") ?? env.CSI_ENDPOINT;
    if (endpoint === undefined || endpoint === "")
      throw new UsageError("give the plugin's endpoint: --endpoint unix:///path/csi.sock (or CSI_ENDPOINT)");
    parseEndpoint(endpoint);
    const format = parseOutputFormat(args.string("output"));
    const timeoutSeconds = Number(args.string("timeout") ?? "120");
    if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) throw new UsageError("--timeout takes seconds (0: none)");
    const requestJsonFile = args.string("request-json");
    let requestJson: JsonValue | undefined;
    if (requestJsonFile !== undefined) {
      const text = readFileSync(requestJsonFile === "-" ? 0 : requestJsonFile, "utf8");
      try {
        requestJson = JSON.parse(text) as JsonValue;
      } catch {
        throw new UsageError(`--request-json ${requestJsonFile} is not valid JSON`);
      }
    }
    const secrets = loadSecrets(args.string("secrets-file"), env);
    const colors = colorsWanted(process.stdout, env, args.bool("no-color"));
    clients = connectCsi(endpoint);
    const found =
      first === "describe" || first === "call"
        ? { command: undefined, rest: parsed.positionals.slice(1) }
        : findCommand(parsed.positionals);
    if (!found)
      throw new UsageError(`unknown command ${JSON.stringify(parsed.positionals.slice(0, 2).join(" "))}; csictl --help lists them`);
    const ctx: Context = {
      args: new Args({ positionals: found.rest, flags: parsed.flags }),
      clients,
      format,
      style: style(colors),
      secrets,
      requestJson,
      signal: abort.signal,
      call: () => ({ signal: abort.signal, ...(timeoutSeconds > 0 ? { timeoutMs: timeoutSeconds * 1000 } : {}) }),
      progress: progressReporter(process.stderr),
      print: (text) => process.stdout.write(`${text}\n`),
    };
    if (first === "describe") await describe(ctx);
    else if (first === "call") await genericCall(ctx);
    else await found.command?.run(ctx);
    for (const flag of ctx.args.unused().filter((f) => !GLOBAL_FLAGS.includes(f))) {
      process.stderr.write(`csictl: warning: --${flag} is not a flag of this command and was ignored\n`);
    }
    return 0;
  } catch (err) {
    if (interrupted) {
      process.stderr.write("csictl: interrupted; the call was cancelled\n");
      return EXIT_INTERRUPTED;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`csictl: ${err.message}\n`);
      return EXIT_USAGE;
    }
    const error = ConnectError.from(err);
    const codeName = Code[error.code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
    process.stderr.write(`csictl: ${codeName}: ${error.rawMessage}\n`);
    return error.code;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    clients?.close();
  }
}
