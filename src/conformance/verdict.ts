/** How a check ends when it does not pass: a failure (the plugin broke the rule) or a skip. */

/** A check's verdict: the driver broke the rule. */
export class CheckFailure extends Error {
  override readonly name = "CheckFailure";
}

/** The check cannot run against this driver or configuration. */
export class CheckSkipped extends Error {
  override readonly name = "CheckSkipped";
}

export function fail(message: string): never {
  throw new CheckFailure(message);
}

export function skip(reason: string): never {
  throw new CheckSkipped(reason);
}

/** Fail with `message` unless `condition` holds. */
export function verify(condition: unknown, message: string): asserts condition {
  if (!condition) fail(message);
}
