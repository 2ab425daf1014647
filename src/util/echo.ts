/**
 * How a message shows a value it did not choose (a caller's id or path, a
 * tool's output): control and other non-printable characters escaped, and
 * only a prefix of a long value. src/csi/errors.ts builds every status message
 * with these; code below the gRPC layer that words a message itself uses them too.
 */

/** Longest echo of one value, in characters of its escaped form: a printable ASCII string within CSI's 128-byte limit is shown whole. */
export const MAX_ECHO_CHARS = 128;
/** Longest echo of a caught error's message: this process's own diagnosis, which quotes input by these rules. */
export const MAX_DETAIL_CHARS = 512;
/** Control, format, private-use, unassigned and separator characters, and lone surrogates: never sent as they are. */
const NON_PRINTABLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}]/u;
const SHORT_ESCAPES: Readonly<Record<string, string>> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" };

export function escapeCharacter(ch: string, quoted: boolean): string {
  if (quoted && (ch === '"' || ch === "\\")) return `\\${ch}`;
  if (!NON_PRINTABLE.test(ch)) return ch;
  const short = SHORT_ESCAPES[ch];
  if (short !== undefined) return short;
  const code = ch.codePointAt(0) ?? 0;
  if (code <= 0xff) return `\\x${code.toString(16).padStart(2, "0")}`;
  if (code <= 0xffff) return `\\u${code.toString(16).padStart(4, "0")}`;
  return `\\u{${code.toString(16)}}`;
}

/** `value` escaped (and quoted), cut to `limit` characters of its escaped form with an ellipsis and its size in bytes. */
export function bounded(value: string, quoted: boolean, limit = MAX_ECHO_CHARS): string {
  let out = "";
  let chars = 0;
  for (const ch of value) {
    const escaped = escapeCharacter(ch, quoted);
    if (chars + escaped.length > limit) {
      const text = quoted ? `"${out}"` : out;
      return `${text}… (${Buffer.byteLength(value, "utf8")} bytes)`;
    }
    out += escaped;
    chars += escaped.length;
  }
  return quoted ? `"${out}"` : out;
}

/**
 * An input value as a message may show it: control and other non-printable
 * characters escaped (`\n`, `\x00`, `\u202e`), and when it is longer than
 * MAX_ECHO_CHARS, its prefix, an ellipsis and its length in bytes.
 */
export function echo(value: string): string {
  return bounded(value, false);
}

/** As echo, in double quotes, with quotes and backslashes escaped: for values whose bounds matter (empty, spaces). */
export function quote(value: string): string {
  return bounded(value, true);
}
