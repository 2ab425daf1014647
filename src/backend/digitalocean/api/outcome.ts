import { Code, codeOf, CsiError } from "../../../csi/errors.js";
import { isDoApiError } from "./errors.js";

/** Longest detail kept from a failure (the API's messages are not ours to bound). */
const MAX_DETAIL = 200;

/**
 * What one API request says about the API itself, as opposed to about the
 * request: any answer but 401 means the API works (a 404 or a 422 is the API
 * doing its job, and a 403 says the token is valid but lacks a scope for that
 * one route, which the call's own PERMISSION_DENIED reports); retries that ran
 * out mean it is unreachable; 401 means it refuses the token.
 */
export type ApiOutcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly problem: "unreachable" | "unauthorised"; readonly detail: string };

/** The outcome a failed request stands for, or undefined when it says nothing about the API (the caller gave up, a malformed answer). */
export function outcomeOfFailure(err: unknown): ApiOutcome | undefined {
  if (isDoApiError(err)) {
    if (err.httpStatus === 401) {
      return { ok: false, problem: "unauthorised", detail: `${err.httpStatus} ${err.apiMessage}`.slice(0, MAX_DETAIL) };
    }
    return { ok: true };
  }
  if (codeOf(err) === Code.Unavailable && err instanceof CsiError) {
    return { ok: false, problem: "unreachable", detail: err.rawMessage.slice(0, MAX_DETAIL) };
  }
  return undefined;
}
