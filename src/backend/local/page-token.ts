import { Aborted } from "../../csi/errors.js";

/**
 * Paging tokens of the local backend. Objects are listed in the order they
 * became ready (a counter kept in the metadata that never goes back), and a
 * token is the position of the last object returned. Objects created while a
 * CO pages get a larger position, so every object that exists for the whole
 * listing is returned exactly once, and none twice.
 */
export type ListKind = "volumes" | "snapshots";

const PREFIX: Record<ListKind, string> = { volumes: "v1.vol.", snapshots: "v1.snap." };

export function encodePageToken(kind: ListKind, position: number): string {
  return Buffer.from(`${PREFIX[kind]}${position}`, "utf8").toString("base64url");
}

/**
 * The position a token continues after; 0 for an empty token. ABORTED for a
 * token this backend did not issue: malformed, of the other list, or past the
 * newest position (from another data dir).
 */
export function decodePageToken(kind: ListKind, token: string, newestPosition: number): number {
  if (token === "") return 0;
  const text = /^[A-Za-z0-9_-]+$/.test(token) ? Buffer.from(token, "base64url").toString("utf8") : "";
  const prefix = PREFIX[kind];
  const digits = text.startsWith(prefix) ? text.slice(prefix.length) : "";
  const position = /^[1-9][0-9]{0,15}$/.test(digits) ? Number(digits) : NaN;
  // Only the exact encoding this backend produces is accepted (base64 decoding alone is lenient).
  if (!Number.isSafeInteger(position) || position > newestPosition || encodePageToken(kind, position) !== token) {
    throw Aborted("starting_token %q is not a token this plugin issued for listing %s; start again with an empty token", token, kind);
  }
  return position;
}
