import { randomBytes } from "node:crypto";
import type { DescMessage, Message } from "@bufbuild/protobuf";
import type { Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";
import type { Logger } from "../log/logger.js";
import { callInfoKey } from "./call-context.js";
import { codeName, toCsiError } from "./errors.js";
import { redactedJson } from "./redact.js";

/** Receives one observation per finished call (for metrics). */
export interface CallObserver {
  observe(method: string, code: string, seconds: number): void;
}

export interface CallInterceptorOptions {
  log: Logger;
  observer?: CallObserver;
  /** Methods whose successful calls are logged at debug instead of info (health checks). */
  quietMethods?: ReadonlySet<string>;
}

const idPrefix = randomBytes(3).toString("hex");
let idCounter = 0;

function nextRequestId(): string {
  idCounter = (idCounter + 1) % 0x100000000;
  return `${idPrefix}-${idCounter.toString(16).padStart(6, "0")}`;
}

/**
 * The one place every call passes through: it gives the call a request id and a
 * logger, turns anything that is not a gRPC status into INTERNAL (so no request
 * can surface as UNKNOWN or take the process down), and writes exactly one line
 * per call with method, duration and code. At debug level the request and the
 * response are logged too, with every csi_secret field stripped.
 */
export function callInterceptor(options: CallInterceptorOptions): Interceptor {
  const { log: root, observer, quietMethods } = options;
  return (next) => async (req) => {
    const method = `/${req.service.typeName}/${req.method.name}`;
    const requestId = nextRequestId();
    const log = root.child({ method, requestId });
    req.contextValues.set(callInfoKey, { requestId, log });
    const started = process.hrtime.bigint();
    const debug = log.isLevelEnabled("debug");
    if (debug && !req.stream) log.debug({ request: render(req.method.input, req.message) }, "request");

    const finish = (err: unknown): unknown => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const durationMs = Math.round(seconds * 1e6) / 1e3;
      if (err === undefined) {
        observer?.observe(method, "OK", seconds);
        if (quietMethods?.has(method)) log.debug({ code: "OK", durationMs }, "call finished");
        else log.info({ code: "OK", durationMs }, "call finished");
        return undefined;
      }
      const status = toCsiError(err, req.signal);
      const code = codeName(status.code);
      observer?.observe(method, code, seconds);
      const fields = { code, durationMs, error: status.rawMessage };
      if (code === "INTERNAL" || code === "UNKNOWN" || code === "DATA_LOSS") {
        const cause = status.cause instanceof Error ? status.cause : undefined;
        log.error(cause?.stack ? { ...fields, stack: cause.stack } : fields, "call failed");
      } else {
        log.warn(fields, "call failed");
      }
      return status;
    };

    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      throw finish(err);
    }
    if (!res.stream) {
      if (debug) log.debug({ response: render(res.method.output, res.message) }, "response");
      finish(undefined);
      return res;
    }
    // Server streaming: the call ends when the handler's iterable does.
    const output = res.method.output;
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        let sent = 0;
        try {
          for await (const m of messages) {
            sent++;
            if (debug) log.debug({ response: render(output, m) }, "stream message");
            yield m;
          }
        } catch (err) {
          throw finish(err);
        }
        log.debug({ messages: sent }, "stream complete");
        finish(undefined);
      })(),
    };
  };
}

function render(desc: DescMessage, message: Message): unknown {
  try {
    return redactedJson(desc, message);
  } catch {
    return "<unrenderable>";
  }
}
