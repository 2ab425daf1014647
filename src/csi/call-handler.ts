import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { create, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream, status as Status, UntypedHandleCall } from "@grpc/grpc-js";
import type { Logger } from "../log/logger.js";
import type { CallContext } from "../driver/call-context.js";
import { Canceled, codeName, type CsiError, DeadlineExceeded, toCsiError, Unimplemented } from "../errors.js";
import { callIds } from "./call-ids.js";
import { redactedJson } from "./redact.js";

/** Told when each call starts and when it ends (for metrics). */
export interface CallObserver {
  started(method: string): void;
  finished(method: string, code: string, seconds: number): void;
}

export interface CallMiddlewareOptions {
  readonly log: Logger;
  readonly observer?: CallObserver;
  /** Methods whose successful calls are logged at debug instead of info (health checks). */
  readonly quietMethods?: ReadonlySet<string>;
}

/** Signals of calls in progress, so a forced shutdown can cancel them. */
export type ActiveCalls = Set<AbortController>;

const idPrefix = randomBytes(3).toString("hex");
let idCounter = 0;

function nextRequestId(): string {
  idCounter = (idCounter + 1) % 0x100000000;
  return `${idPrefix}-${idCounter.toString(16).padStart(6, "0")}`;
}

type AnyCall = ServerUnaryCall<Message, Message> | ServerWritableStream<Message, Message>;

interface Run {
  readonly ctx: CallContext;
  readonly debug: boolean;
  /** Log and count the call's end once; returns the status sent for an error. */
  finish(err?: unknown): CsiError | undefined;
}

function deadlineOf(call: AnyCall): number {
  const deadline = call.getDeadline();
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

/**
 * The one place every call passes through: it gives the call a request id, a
 * logger and an AbortSignal (caller cancellation, deadline, forced shutdown),
 * turns anything that is not a status error into INTERNAL (so no request can
 * surface as UNKNOWN or take the process down), and writes exactly one line
 * per call with method, duration, code and the ids the request names. At
 * debug level the request and the response are logged too, with every
 * csi_secret field stripped.
 */
function begin(method: string, input: DescMessage, call: AnyCall, options: CallMiddlewareOptions, active: ActiveCalls): Run {
  const { log: root, observer, quietMethods } = options;
  observer?.started(method);
  const started = process.hrtime.bigint();
  const requestId = nextRequestId();
  const controller = new AbortController();
  active.add(controller);

  const deadline = deadlineOf(call);
  const timer = Number.isFinite(deadline)
    ? setTimeout(
        () => controller.abort(DeadlineExceeded("the caller's deadline expired before %s finished", method)),
        Math.max(0, deadline - Date.now()),
      )
    : undefined;
  const onCancelled = () => {
    if (controller.signal.aborted) return;
    controller.abort(
      Date.now() >= deadline
        ? DeadlineExceeded("the caller's deadline expired before %s finished", method)
        : Canceled("the caller cancelled %s", method),
    );
  };
  call.once("cancelled", onCancelled);

  let child: Logger | undefined;
  const ctx: CallContext = {
    method,
    requestId,
    signal: controller.signal,
    get log() {
      child ??= root.child({ method, requestId });
      return child;
    },
  };

  let finished = false;
  return {
    ctx,
    debug: root.isLevelEnabled("debug"),
    finish(err?: unknown) {
      if (finished) return undefined;
      finished = true;
      clearTimeout(timer);
      call.off("cancelled", onCancelled);
      active.delete(controller);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const durationMs = Math.round(seconds * 1e6) / 1e3;
      const ids = callIds(input, call.request);
      if (err === undefined) {
        observer?.finished(method, "OK", seconds);
        const line = { method, requestId, ...ids, code: "OK", durationMs };
        if (quietMethods?.has(method)) root.debug(line, "call finished");
        else root.info(line, "call finished");
        return undefined;
      }
      const status = toCsiError(err, controller.signal);
      const code = codeName(status.code);
      observer?.finished(method, code, seconds);
      const line = { method, requestId, ...ids, code, durationMs, error: status.rawMessage };
      if (code === "INTERNAL" || code === "UNKNOWN" || code === "DATA_LOSS") {
        const cause = status.cause instanceof Error ? status.cause : undefined;
        root.error(cause?.stack ? { ...line, stack: cause.stack } : line, "call failed");
      } else {
        root.warn(line, "call failed");
      }
      return status;
    },
  };
}

function render(desc: DescMessage, message: Message): unknown {
  try {
    return redactedJson(desc, message);
  } catch {
    return "<unrenderable>";
  }
}

export type UntypedHandler = (request: Message, ctx: CallContext) => unknown;

/** A grpc-js handler for one method, running `handler` (or answering UNIMPLEMENTED) inside the middleware. */
export function grpcHandler(
  method: DescMethod,
  handler: UntypedHandler | undefined,
  options: CallMiddlewareOptions,
  active: ActiveCalls,
): UntypedHandleCall {
  const name = `/${method.parent.typeName}/${method.name}`;
  const implemented =
    handler ??
    (() => {
      throw Unimplemented("%s is not implemented by this plugin", name);
    });

  if (method.methodKind === "server_streaming") {
    return (call: ServerWritableStream<Message, Message>) => {
      const run = begin(name, method.input, call, options, active);
      void (async () => {
        try {
          if (run.debug) run.ctx.log.debug({ request: render(method.input, call.request) }, "request");
          const messages = implemented(call.request, run.ctx) as AsyncIterable<unknown>;
          let sent = 0;
          for await (const init of messages) {
            // Cancelled, past its deadline or cut by shutdown: no further message, whether or not the handler looked.
            if (call.cancelled) throw run.ctx.signal.reason ?? Canceled("the caller cancelled %s", name);
            run.ctx.signal.throwIfAborted();
            const message = create(method.output, init as never);
            if (run.debug) run.ctx.log.debug({ response: render(method.output, message) }, "stream message");
            sent++;
            if (!call.write(message)) await once(call, "drain", { signal: run.ctx.signal });
          }
          run.ctx.log.debug({ messages: sent }, "stream complete");
          run.finish();
          call.end();
        } catch (err) {
          const status = run.finish(err);
          if (status && !call.cancelled) call.emit("error", { code: status.code, details: status.rawMessage });
        }
      })();
    };
  }

  return (call: ServerUnaryCall<Message, Message>, callback: sendUnaryData<Message>) => {
    const run = begin(name, method.input, call, options, active);
    void (async () => {
      let response: Message;
      try {
        if (run.debug) run.ctx.log.debug({ request: render(method.input, call.request) }, "request");
        const init = await implemented(call.request, run.ctx);
        response = create(method.output, init as never);
        if (run.debug) run.ctx.log.debug({ response: render(method.output, response) }, "response");
      } catch (err) {
        const status = run.finish(err);
        if (status) callback({ code: status.code as number as Status, details: status.rawMessage });
        return;
      }
      run.finish();
      callback(null, response);
    })();
  };
}
