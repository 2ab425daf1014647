import type { Code } from "@connectrpc/connect";
import { expect } from "vitest";
import { codeName, codeOf } from "../../src/csi/errors.js";

/**
 * Await a call that must fail with a status error of `code` (a gRPC client's
 * ConnectError or a backend's CsiError), its message matching `message` when
 * given; returns the status message. A success fails the test.
 */
export async function expectCode(call: Promise<unknown>, code: Code, message?: RegExp): Promise<string> {
  let caught: unknown;
  try {
    await call;
  } catch (err) {
    caught = err;
  }
  if (caught === undefined) throw new Error(`the call succeeded but ${codeName(code)} was expected`);
  const text = statusMessage(caught);
  const caughtCode = codeOf(caught);
  expect(caughtCode === undefined ? `not a status error: ${text}` : codeName(caughtCode), text).toBe(codeName(code));
  if (message) expect(text).toMatch(message);
  return text;
}

/** The message a status error carries, without the code prefix clients add. */
function statusMessage(err: unknown): string {
  if (err instanceof Error) return "rawMessage" in err && typeof err.rawMessage === "string" ? err.rawMessage : err.message;
  return String(err);
}
