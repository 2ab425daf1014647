/**
 * The status vocabulary every layer shares: gRPC's canonical codes and the
 * CsiError that carries one with a bounded message. Backends and the mounter
 * raise these directly (a missing volume is NOT_FOUND wherever it is found),
 * the driver adds the request's rules, and the gRPC layer only sends them, so
 * the module sits below all three rather than in any one of them.
 */
import { bounded, escapeCharacter, MAX_DETAIL_CHARS } from "./util/echo.js";

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
 * Status messages echo what a caller sent, and a caller can send megabytes.
 * The message travels percent-encoded in the grpc-message trailer, and a
 * trailer larger than the peer's HTTP/2 header limit is never delivered: the
 * call hangs and the connection with it. So every message is built here, with
 * each echoed value escaped and cut to a short prefix, and the whole message
 * capped in the bytes it takes on the wire.
 */

/** Most elements of a list echoed in one message. */
export const MAX_ECHO_ITEMS = 8;
/** Longest status message, in bytes as it travels in grpc-message (percent-encoded). */
export const MAX_MESSAGE_BYTES = 1024;

/** Bytes a piece of (escaped) text takes in grpc-message, which the server percent-encodes with encodeURI. */
function wireBytes(ch: string): number {
  return /^[A-Za-z0-9;,/?:@&=+$\-_.!~*'()#]$/.test(ch) ? 1 : 3 * Buffer.byteLength(ch, "utf8");
}

function echoList(values: readonly unknown[], quoted: boolean): string {
  const shown = values.slice(0, MAX_ECHO_ITEMS).map((v) => echoValue(v, quoted));
  const more = values.length - shown.length;
  return more > 0 ? `${shown.join(", ")} and ${more} more` : shown.join(", ");
}

function echoValue(value: unknown, quoted: boolean): string {
  if (value instanceof MessagePart) return value.text;
  if (Array.isArray(value)) return echoList(value, quoted);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value);
  if (value instanceof Error) return bounded(value.message, quoted, MAX_DETAIL_CHARS);
  return bounded(String(value), quoted);
}

/**
 * Part of a message, formatted by messagePart: `%s` inserts it as it is (its
 * echoes are bounded already), so reasons can be built in one place and
 * raised in another.
 */
export class MessagePart {
  constructor(readonly text: string) {}

  toString(): string {
    return this.text;
  }
}

/** Format a part of a message (see formatMessage), to be inserted into another with `%s`. */
export function messagePart(template: string, ...args: unknown[]): MessagePart {
  return new MessagePart(formatMessage(template, ...args));
}

/**
 * printf-style formatting for status messages. `%s` echoes a value (see echo
 * in src/util/echo.ts), `%q` quotes it (see quote), `%d` prints a number, `%%`
 * a percent sign. An array is echoed as a list of at most MAX_ECHO_ITEMS
 * elements, each bounded; an Error as its message, up to MAX_DETAIL_CHARS; a
 * MessagePart as it is. Only the template is trusted: every other argument is
 * treated as input.
 */
export function formatMessage(template: string, ...args: unknown[]): string {
  let next = 0;
  const formatted = template.replace(/%[sqd%]/g, (spec) => {
    if (spec === "%%") return "%";
    if (next >= args.length) return spec;
    const value = args[next++];
    if (spec === "%d") return typeof value === "number" || typeof value === "bigint" ? String(value) : String(Number(value));
    return echoValue(value, spec === "%q");
  });
  const rest = args.slice(next).map((v) => echoValue(v, false));
  return rest.length > 0 ? `${formatted} ${rest.join(" ")}` : formatted;
}

/**
 * The message as it may be sent: non-printable characters escaped and, past
 * MAX_MESSAGE_BYTES on the wire, cut with a note of the original size. Escaped
 * text is left as it is, so bounding twice changes nothing.
 */
export function boundedMessage(message: string): string {
  const suffix = ` … (message cut from ${Buffer.byteLength(message, "utf8")} bytes)`;
  const budget = MAX_MESSAGE_BYTES - [...suffix].reduce((n, ch) => n + wireBytes(ch), 0);
  let out = "";
  let bytes = 0;
  let cutAt: number | undefined;
  for (const ch of message) {
    const escaped = escapeCharacter(ch, false);
    const size = [...escaped].reduce((n, c) => n + wireBytes(c), 0);
    if (cutAt === undefined && bytes + size > budget) cutAt = out.length;
    out += escaped;
    bytes += size;
    if (bytes > MAX_MESSAGE_BYTES) break;
  }
  return bytes > MAX_MESSAGE_BYTES && cutAt !== undefined ? `${out.slice(0, cutAt)}${suffix}` : out;
}

/**
 * A gRPC status as CSI handlers raise it: a canonical code and a message that
 * tells the caller what to fix, bounded (see boundedMessage) whoever built it.
 * Status details are never sent (the spec requires them empty).
 */
export class CsiError extends Error {
  override readonly name = "CsiError";
  readonly code: Code;
  /** The message without the code prefix: what the client receives. */
  readonly rawMessage: string;

  constructor(code: Code, rawMessage: string, options?: { cause?: unknown }) {
    const message = boundedMessage(rawMessage);
    super(`[${codeName(code)}] ${message}`, options);
    this.code = code;
    this.rawMessage = message;
  }
}

type ErrorFactory = (template: string, ...args: unknown[]) => CsiError;

function factory(code: Code): ErrorFactory {
  return (template, ...args) => new CsiError(code, formatMessage(template, ...args));
}

// Handlers throw these, printf-style: `throw NotFound("volume %s does not exist", id)`; see formatMessage.
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
