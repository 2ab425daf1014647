import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { silentLogger, type Logger } from "../log/logger.js";

/** What the middleware hands every handler besides the request: its id and its logger. */
export interface CallInfo {
  readonly requestId: string;
  /** Child of the process logger carrying the method and request id. */
  readonly log: Logger;
}

export const callInfoKey = createContextKey<CallInfo>({ requestId: "", log: silentLogger }, { description: "csi call" });

export function callInfo(ctx: HandlerContext): CallInfo {
  return ctx.values.get(callInfoKey);
}
