import { Code, ConnectError } from "@connectrpc/connect";
import { fail } from "./verdict.js";

/** The canonical upper-case name of a gRPC code (`INVALID_ARGUMENT`), OK for success. */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "OK";
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

export type Outcome<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: Code; readonly message: string; readonly error: ConnectError };

/** Await an RPC and capture its status; anything that is not a gRPC status is rethrown. */
export async function outcome<T>(call: Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await call };
  } catch (err) {
    if (err instanceof ConnectError) return { ok: false, code: err.code, message: err.rawMessage, error: err };
    throw err;
  }
}

export function describeOutcome(result: Outcome<unknown>): string {
  if (result.ok) return "OK";
  return `${codeName(result.code)} (${JSON.stringify(truncate(result.message, 300))})`;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}

function expected(codes: readonly Code[]): string {
  return codes.map(codeName).join(" or ");
}

/**
 * The error scheme applies to every failed call: "The status `message` MUST
 * contain a human readable description of error" and "The status `details`
 * MUST be empty".
 */
export function statusShapeProblem(error: ConnectError): string | undefined {
  if (error.rawMessage.trim() === "")
    return `the ${codeName(error.code)} status has an empty message (the spec requires a human readable description)`;
  if (error.details.length > 0)
    return `the ${codeName(error.code)} status carries ${error.details.length} detail(s); the spec requires status details to be empty`;
  return undefined;
}

/**
 * Expect `call` to fail with one of `codes`. `what` names the request for the
 * failure message, e.g. "CreateVolume without a name".
 */
export async function expectCode(what: string, call: Promise<unknown>, ...codes: Code[]): Promise<ConnectError> {
  return expectFailed(what, await outcome(call), ...codes);
}

/** Like expectCode, for a call already awaited (when a success must first be cleaned up). */
export function expectFailed(what: string, result: Outcome<unknown>, ...codes: Code[]): ConnectError {
  if (result.ok) fail(`${what}: expected ${expected(codes)}, got OK`);
  if (!codes.includes(result.code)) fail(`${what}: expected ${expected(codes)}, got ${describeOutcome(result)}`);
  const problem = statusShapeProblem(result.error);
  if (problem !== undefined) fail(`${what}: ${problem}`);
  return result.error;
}

/** Expect `call` to succeed and return its response. */
export async function expectOk<T>(what: string, call: Promise<T>): Promise<T> {
  const result = await outcome(call);
  if (!result.ok) fail(`${what}: expected OK, got ${describeOutcome(result)}`);
  return result.value;
}

/** Codes a caller may retry the same request on, as the kubernetes sidecars do. */
export function isRetryable(code: Code): boolean {
  return code === Code.Aborted || code === Code.Unavailable || code === Code.DeadlineExceeded || code === Code.ResourceExhausted;
}
