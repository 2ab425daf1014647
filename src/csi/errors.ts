import { format } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";

export { Code };

/** A gRPC status error as CSI handlers raise it: a canonical code and a readable message, never details. */
export type CsiError = ConnectError;

type ErrorFactory = (message: string, ...args: unknown[]) => CsiError;

function factory(code: Code): ErrorFactory {
  return (message, ...args) => new ConnectError(args.length > 0 ? format(message, ...args) : message, code);
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

export function isCsiError(err: unknown): err is CsiError {
  return err instanceof ConnectError;
}

/** The gRPC code of an error, or undefined when it is not a status error. */
export function codeOf(err: unknown): Code | undefined {
  return err instanceof ConnectError ? err.code : undefined;
}

/** Upper-case canonical name of a code (`NOT_FOUND`), as gRPC tooling prints it. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "OK";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/**
 * Turn anything a handler threw into a status error. Status errors pass through
 * unchanged; an abort caused by the caller's deadline becomes DEADLINE_EXCEEDED or
 * CANCELLED; anything else is a bug or an unexpected host failure and becomes
 * INTERNAL with the original message, so the caller sees what went wrong.
 */
export function toCsiError(err: unknown, signal?: AbortSignal): CsiError {
  if (err instanceof ConnectError) {
    // connect reports a handler that returned nothing useful as Unknown; CSI callers
    // must always get a canonical code.
    if (err.code === Code.Unknown) return new ConnectError(err.rawMessage, Code.Internal, undefined, undefined, err);
    return err;
  }
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof ConnectError) return reason;
    return new ConnectError("the call was cancelled or its deadline expired before it completed", Code.DeadlineExceeded);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ConnectError(message === "" ? "internal error" : message, Code.Internal, undefined, undefined, err);
}
