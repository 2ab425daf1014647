import { Code, CsiError, DeadlineExceeded } from "../../../errors.js";

const brand = Symbol("do-api-error");

/**
 * An error answer of the DigitalOcean API. It is a CSI status error from the
 * start (its code follows the HTTP status, see `codeForStatus`), so nothing the
 * API answers can surface as a code-less error; callers that give a status its
 * meaning for one operation (404 on delete is success, 422 "already attached"
 * is success, ...) inspect `httpStatus` and `apiMessage`.
 */
export class DoApiError extends CsiError {
  readonly [brand] = true;

  constructor(
    readonly httpStatus: number,
    /** The API's short error id, e.g. `not_found`, `unprocessable_entity`. */
    readonly errorId: string,
    /** The API's message, e.g. "Attachment not found". */
    readonly apiMessage: string,
    /** "POST /v2/volumes/{id}/actions", for messages. */
    readonly route: string,
    code: Code = codeForStatus(httpStatus, apiMessage),
  ) {
    super(code, `DigitalOcean API: ${route}: ${httpStatus} ${apiMessage}`);
  }

  /** The same API answer reported with another code (when an operation gives the status a specific meaning). */
  withCode(code: Code, message?: string): CsiError {
    return new CsiError(code, message ?? this.rawMessage, { cause: this });
  }
}

export function isDoApiError(err: unknown): err is DoApiError {
  return typeof err === "object" && err !== null && brand in err;
}

/** True when the error is an API answer with this HTTP status (and, if given, a message matching the pattern). */
export function isApiStatus(err: unknown, status: number, message?: RegExp): err is DoApiError {
  return isDoApiError(err) && err.httpStatus === status && (message === undefined || message.test(err.apiMessage));
}

/** Messages of 422 answers that have a specific meaning for the driver. */
export const PENDING_EVENT = /pending event/i;
export const ALREADY_ATTACHED = /already attached/i;
export const ATTACHMENT_NOT_FOUND = /attachment not found/i;
export const ATTACH_LIMIT = /cannot attach more|maximum number of volumes|volume limit|limit/i;
export const ALREADY_EXISTS = /already exists|already in use|already taken/i;

/**
 * The CSI code an API answer means when the operation gives it no specific
 * meaning. Operations override it where the spec asks (404 on delete -> OK,
 * 409 on delete of an attached volume -> FAILED_PRECONDITION, ...).
 */
export function codeForStatus(status: number, message: string): Code {
  switch (status) {
    case 400:
      return Code.InvalidArgument;
    case 401:
      return Code.Unauthenticated;
    case 403:
      return Code.PermissionDenied;
    case 404:
      return Code.NotFound;
    case 409:
      return ALREADY_EXISTS.test(message) ? Code.AlreadyExists : Code.FailedPrecondition;
    case 422:
      if (PENDING_EVENT.test(message)) return Code.Aborted;
      if (ATTACH_LIMIT.test(message)) return Code.ResourceExhausted;
      if (ALREADY_EXISTS.test(message)) return Code.AlreadyExists;
      return Code.FailedPrecondition;
    case 429:
      return Code.Unavailable;
    default:
      return status >= 500 ? Code.Unavailable : Code.Internal;
  }
}

/**
 * What to throw when the caller's signal aborted: its reason when that is
 * already a status error, otherwise DEADLINE_EXCEEDED naming what was going on.
 */
export function abortedError(signal: AbortSignal, doing: string): CsiError {
  const reason: unknown = signal.reason;
  if (reason instanceof CsiError) return reason;
  return DeadlineExceeded("the call's deadline expired while %s", doing);
}
