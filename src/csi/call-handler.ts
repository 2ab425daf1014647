import { create, fromBinary, toBinary, type DescMessage, type DescMethod, type Message } from "@bufbuild/protobuf";
import type { Logger } from "../log/logger.js";
import type { CallContext } from "../driver/call-context.js";
import {
  Canceled,
  codeName,
  type CsiError,
  DeadlineExceeded,
  InvalidArgument,
  ResourceExhausted,
  toCsiError,
  Unimplemented,
} from "../errors.js";
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

/** Calls in progress, so a forced shutdown can cancel them. */
export type ActiveCalls = Set<{ abort(reason: CsiError): void }>;

/** Tells this process's request ids from another's (a restarted plugin's) in the logs; not a secret. */
const idPrefix = Math.floor(Math.random() * 0x1000000)
  .toString(16)
  .padStart(6, "0");
let idCounter = 0;

function nextRequestId(): string {
  idCounter = (idCounter + 1) % 0x100000000;
  return `${idPrefix}-${idCounter.toString(16).padStart(6, "0")}`;
}

/**
 * How a call answers, given by the transport. The middleware serialises every
 * message itself, so what the transport sends is bytes already checked against
 * the send limit.
 */
export interface CallResponder {
  /** One message of a server stream; resolves once the next one may be sent, rejects when the stream is gone. */
  write(message: Uint8Array): Promise<void>;
  /** The call's end: OK with the unary response's bytes (none for a stream), or the error's status. */
  end(error: CsiError | undefined, response?: Uint8Array): void;
}

/** A call in progress, as the transport sees it. */
export interface RunningCall {
  /** The caller went away (reset or closed its stream) before the answer. */
  cancel(): void;
}

/** Runs one method's calls: the request's bytes in, the answer out through the responder. */
export interface MethodRunner {
  start(requestBytes: Uint8Array, deadline: number, responder: CallResponder): RunningCall;
}

/**
 * The one place every call passes through: it gives the call a request id, a
 * logger and an AbortSignal (caller cancellation, deadline, forced shutdown),
 * turns anything that is not a status error into INTERNAL (so no request can
 * surface as UNKNOWN or take the process down), and writes exactly one line
 * per call with method, duration, code and the ids the request names. At
 * debug level the request and the response are logged too, with every
 * csi_secret field stripped.
 *
 * A node plugin answers a Probe every few seconds for the life of the node,
 * so what a call does not use is not made: the request id, the child logger
 * and the AbortController are created when first asked for.
 */
class Call implements CallContext, RunningCall {
  readonly method: string;
  readonly debug: boolean;
  request: Message | undefined;
  readonly #input: DescMessage;
  readonly #options: CallMiddlewareOptions;
  readonly #active: ActiveCalls;
  readonly #deadline: number;
  readonly #started = performance.now();
  readonly #timer: NodeJS.Timeout | undefined;
  #requestId: string | undefined;
  #log: Logger | undefined;
  #controller: AbortController | undefined;
  /** Why the call was stopped before its signal was asked for. */
  #abortReason: CsiError | undefined;
  #finished = false;

  constructor(method: string, input: DescMessage, deadline: number, options: CallMiddlewareOptions, active: ActiveCalls) {
    this.method = method;
    this.#input = input;
    this.#options = options;
    this.#active = active;
    this.#deadline = deadline;
    this.debug = options.log.isLevelEnabled("debug");
    options.observer?.started(method);
    active.add(this);
    if (Number.isFinite(deadline)) {
      this.#timer = setTimeout(
        () => this.abort(DeadlineExceeded("the caller's deadline expired before %s finished", method)),
        Math.max(0, deadline - Date.now()),
      );
    }
  }

  get requestId(): string {
    this.#requestId ??= nextRequestId();
    return this.#requestId;
  }

  get log(): Logger {
    this.#log ??= this.#options.log.child({ method: this.method, requestId: this.requestId });
    return this.#log;
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#abortReason !== undefined) this.#controller.abort(this.#abortReason);
    }
    return this.#controller.signal;
  }

  /** Stops the call with `reason` (deadline, shutdown); the first reason stays. */
  abort(reason: CsiError): void {
    if (this.#finished || this.#abortReason !== undefined) return;
    this.#abortReason = reason;
    this.#controller?.abort(reason);
  }

  cancel(): void {
    this.abort(
      Date.now() >= this.#deadline
        ? DeadlineExceeded("the caller's deadline expired before %s finished", this.method)
        : Canceled("the caller cancelled %s", this.method),
    );
  }

  /** Throws the reason the call was stopped, if it was. */
  throwIfAborted(): void {
    if (this.#abortReason !== undefined) throw this.#abortReason;
  }

  /** Log and count the call's end once; returns the status to send for an error. */
  finish(err?: unknown): CsiError | undefined {
    if (this.#finished) return undefined;
    this.#finished = true;
    clearTimeout(this.#timer);
    this.#active.delete(this);
    const { log: root, observer, quietMethods } = this.#options;
    const method = this.method;
    const durationMs = Math.round((performance.now() - this.#started) * 1e3) / 1e3;
    if (err === undefined) {
      observer?.finished(method, "OK", durationMs / 1e3);
      const quiet = quietMethods?.has(method) === true;
      if (quiet && !this.debug) return undefined;
      const line = { method, requestId: this.requestId, ...this.#ids(), code: "OK", durationMs };
      if (quiet) root.debug(line, "call finished");
      else root.info(line, "call finished");
      return undefined;
    }
    const status = toCsiError(err, this.#abortReason === undefined ? undefined : this.signal);
    const code = codeName(status.code);
    observer?.finished(method, code, durationMs / 1e3);
    const line = { method, requestId: this.requestId, ...this.#ids(), code, durationMs, error: status.rawMessage };
    if (code === "INTERNAL" || code === "UNKNOWN" || code === "DATA_LOSS") {
      const cause = status.cause instanceof Error ? status.cause : undefined;
      root.error(cause?.stack ? { ...line, stack: cause.stack } : line, "call failed");
    } else {
      root.warn(line, "call failed");
    }
    return status;
  }

  #ids(): Record<string, string> | undefined {
    return this.request === undefined ? undefined : callIds(this.#input, this.request);
  }
}

function render(desc: DescMessage, message: Message): unknown {
  try {
    return redactedJson(desc, message);
  } catch {
    return "<unrenderable>";
  }
}

/**
 * The request's message, or INVALID_ARGUMENT when its bytes are not one of its type.
 * No bytes are the message with every field at its default, made without a
 * reader: Probe, GetPluginInfo and the Get*Capabilities calls send nothing else.
 */
function decodeRequest(method: DescMethod, bytes: Uint8Array): Message {
  if (bytes.length === 0) return create(method.input);
  try {
    return fromBinary(method.input, bytes);
  } catch {
    throw InvalidArgument("the request is not a valid %s message", method.input.typeName);
  }
}

/** A response message's bytes, refused when larger than clients accept. */
function encodeResponse(method: DescMethod, message: Message, maxBytes: number): Uint8Array {
  const bytes = toBinary(method.output, message);
  if (bytes.length > maxBytes) {
    throw ResourceExhausted(
      "the response is %d bytes, more than the %d bytes gRPC clients accept; ask for fewer entries (max_entries)",
      bytes.length,
      maxBytes,
    );
  }
  return bytes;
}

export type UntypedHandler = (request: Message, ctx: CallContext) => unknown;

/** Runs `handler` (or answers UNIMPLEMENTED) for one method, inside the middleware. */
export function methodRunner(
  method: DescMethod,
  handler: UntypedHandler | undefined,
  options: CallMiddlewareOptions & { readonly maxResponseBytes: number },
  active: ActiveCalls,
): MethodRunner {
  const name = `/${method.parent.typeName}/${method.name}`;
  const implemented =
    handler ??
    (() => {
      throw Unimplemented("%s is not implemented by this plugin", name);
    });
  const { maxResponseBytes } = options;

  if (method.methodKind === "server_streaming") {
    return {
      start(requestBytes, deadline, responder) {
        const run = new Call(name, method.input, deadline, options, active);
        void (async () => {
          try {
            const request = decodeRequest(method, requestBytes);
            run.request = request;
            if (run.debug) run.log.debug({ request: render(method.input, request) }, "request");
            const messages = implemented(request, run) as AsyncIterable<unknown>;
            let sent = 0;
            for await (const init of messages) {
              // Cancelled, past its deadline or cut by shutdown: no further message, whether or not the handler looked.
              run.throwIfAborted();
              const message = create(method.output, init as never);
              if (run.debug) run.log.debug({ response: render(method.output, message) }, "stream message");
              sent++;
              await responder.write(encodeResponse(method, message, maxResponseBytes));
            }
            run.log.debug({ messages: sent }, "stream complete");
            run.finish();
            responder.end(undefined);
          } catch (err) {
            const status = run.finish(err);
            if (status) responder.end(status);
          }
        })();
        return run;
      },
    };
  }

  // A unary call: a handler that answers at once (Probe, GetPluginInfo, the
  // Get*Capabilities calls) is answered in the same turn, with no promise made.
  const respond = (run: Call, responder: CallResponder, init: unknown) => {
    let response: Uint8Array;
    try {
      const message = create(method.output, init as never);
      if (run.debug) run.log.debug({ response: render(method.output, message) }, "response");
      response = encodeResponse(method, message, maxResponseBytes);
    } catch (err) {
      fail(run, responder, err);
      return;
    }
    run.finish();
    responder.end(undefined, response);
  };
  return {
    start(requestBytes, deadline, responder) {
      const run = new Call(name, method.input, deadline, options, active);
      let answer: unknown;
      try {
        const request = decodeRequest(method, requestBytes);
        run.request = request;
        if (run.debug) run.log.debug({ request: render(method.input, request) }, "request");
        answer = implemented(request, run);
      } catch (err) {
        fail(run, responder, err);
        return run;
      }
      if (isPromiseLike(answer)) {
        answer.then(
          (init) => respond(run, responder, init),
          (err: unknown) => fail(run, responder, err),
        );
      } else {
        respond(run, responder, answer);
      }
      return run;
    },
  };
}

/** Ends a call that failed: logged and counted once, its status sent. */
function fail(run: Call, responder: CallResponder, err: unknown): void {
  const status = run.finish(err);
  if (status) responder.end(status);
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}
