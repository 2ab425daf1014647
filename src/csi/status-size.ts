/**
 * Keeps every status message within a byte budget as sent. The message travels
 * percent-encoded in the grpc-message header, and HTTP/2 peers accept header
 * lists of 64 KiB (Node) to 16 MiB (Go): past that the status never arrives and
 * the call hangs. Messages are bounded where they are made (errors.ts); this is
 * the transport's guarantee for any message, from any code path.
 */

const CUT_MARKER = "...(cut)";
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * `text` unchanged when its percent-encoded form fits `maxBytes`, otherwise its
 * longest prefix that fits, marked as cut. Lone surrogates (which encodeURI
 * cannot encode) become U+FFFD.
 */
export function cutToEncodedLength(text: string, maxBytes: number): string {
  const wellFormed = text.replace(LONE_SURROGATE, "\uFFFD");
  if (wellFormed.length * 9 <= maxBytes || encodeURI(wellFormed).length <= maxBytes) return wellFormed;
  const budget = maxBytes - encodeURI(CUT_MARKER).length;
  let used = 0;
  let end = 0;
  for (const char of wellFormed) {
    used += encodeURI(char).length;
    if (used > budget) break;
    end += char.length;
  }
  return `${wellFormed.slice(0, end)}${CUT_MARKER}`;
}
