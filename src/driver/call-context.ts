import type { Logger } from "../log/logger.js";

/** What every handler receives besides its request. */
export interface CallContext {
  /** Full gRPC method name, e.g. "/csi.v1.Node/NodeStageVolume". */
  readonly method: string;
  readonly requestId: string;
  /** The process logger with the method and request id attached. */
  readonly log: Logger;
  /**
   * Aborted when the caller cancels, when its deadline passes, or when the
   * server gives up on in-flight calls at shutdown; `signal.reason` is the
   * status to report. Pass it to every backend call and every command.
   */
  readonly signal: AbortSignal;
}
