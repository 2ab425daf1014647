import { format } from "node:util";

/** gRPC status codes (the canonical codes CSI uses), numbered as on the wire. */
export enum Code {
  Canceled = 1,
  Unknown = 2,
  InvalidArgument = 3,
  DeadlineExceeded = 4,
  NotFound = 5,
  AlreadyExists = 6,
  PermissionDenied = 7,
  ResourceExhausted = 8,
  FailedPrecondition = 9,
  Aborted = 10,
  OutOfRange = 11,
  Unimplemented = 12,
  Internal = 13,
  Unavailable = 14,
  DataLoss = 15,
  Unauthenticated = 16,
}

/** Upper-case canonical name of a code (`NOT_FOUND`), as gRPC tooling prints it. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "OK";
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * A gRPC status as CSI handlers raise it: a canonical code and a message that
 * tells the caller what to fix. Status details are never sent (the spec
 * requires them empty).
 */
export class CsiError extends Error {
  override readonly name = "CsiError";
  readonly code: Code;
  /** The message without the code prefix: what the client receives. */
  readonly rawMessage: string;

  constructor(code: Code, rawMessage: string, options?: { cause?: unknown }) {
    super(`[${codeName(code)}] ${rawMessage}`, options);
    this.code = code;
    this.rawMessage = rawMessage;
  }
}

type ErrorFactory = (message: string, ...args: unknown[]) => CsiError;

function factory(code: Code): ErrorFactory {
  return (message, ...args) => new CsiError(code, args.length > 0 ? format(message, ...args) : message);
}

// Handlers throw these, printf-style: `throw NotFound("volume %s does not exist", id)`.
export const InvalidArgument = factory(Code.InvalidArgument);
export const NotFound = factory(Code.NotFound);
export const AlreadyExists = factory(Code.AlreadyExists);
export const PermissionDenied = factory(Code.PermissionDenied);
export const ResourceExhausted = factory(Code.ResourceExhausted);
export const FailedPrecondition = factory(Code.FailedPrecondition);
export const Aborted = factory(Code.Aborted);
export const OutOfRange = factory(Code.OutOfRange);
export const Unimplemented = factory(Code.Unimplemented);
export const Internal = factory(Code.Internal);
export const Unavailable = factory(Code.Unavailable);
export const DeadlineExceeded = factory(Code.DeadlineExceeded);
export const Unauthenticated = factory(Code.Unauthenticated);
export const Canceled = factory(Code.Canceled);

export function isCsiError(err: unknown): err is CsiError {
  return err instanceof CsiError;
}

/**
 * The gRPC code of a status error (ours, or a client library's such as
 * connect's ConnectError), or undefined when it is not one.
 */
export function codeOf(err: unknown): Code | undefined {
  if (err instanceof CsiError) return err.code;
  if (
    err instanceof Error &&
    "code" in err &&
    typeof err.code === "number" &&
    err.code >= Code.Canceled &&
    err.code <= Code.Unauthenticated
  ) {
    return err.code as Code;
  }
  return undefined;
}

/**
 * Turn anything a handler threw into a status error. Status errors pass through
 * (UNKNOWN becomes INTERNAL: CSI callers always get a canonical code); an abort
 * caused by the caller's deadline or cancellation becomes that status; anything
 * else is a bug or an unexpected host failure and becomes INTERNAL with the
 * original message, so the caller sees what went wrong.
 */
export function toCsiError(err: unknown, signal?: AbortSignal): CsiError {
  if (err instanceof CsiError) {
    return err.code === Code.Unknown ? new CsiError(Code.Internal, err.rawMessage, { cause: err }) : err;
  }
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof CsiError) return reason;
    return new CsiError(Code.DeadlineExceeded, "the call was cancelled or its deadline expired before it completed");
  }
  const message = err instanceof Error ? err.message : String(err);
  return new CsiError(Code.Internal, message === "" ? "internal error" : message, { cause: err });
}
