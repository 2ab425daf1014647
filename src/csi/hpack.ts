/**
 * Just enough HPACK (RFC 7541) to read the request headers a client sends and
 * to write them back out: a decoder with the dynamic table, and an encoder that
 * only emits literals without indexing (so the peer's table stays empty).
 * Used to repair the `:authority` of legacy unix-socket clients (see
 * legacy-authority.ts); hpack.js would do it too but costs ~7 MiB of memory on
 * every node.
 */

import { HTTP2 } from "./transport-limits.js";

export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

export class HpackError extends Error {}

/** A header block that is well formed but larger than the decoder accepts. */
export class HpackLimitError extends HpackError {}

/** RFC 7541's per-entry overhead, also used by HTTP/2 to size header lists. */
const FIELD_OVERHEAD = 32;

// RFC 7541 Appendix A.
const STATIC_TABLE: readonly HeaderField[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
].map(([name, value]) => ({ name: name ?? "", value: value ?? "" }));

// RFC 7541 Appendix B code lengths per symbol (0-255, then EOS). The code is
// canonical, so the codes themselves follow from the lengths.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10,
  12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7,
  7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22,
  23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22,
  23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20,
  24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];
const EOS = 256;

/** Canonical-code decoding tables: for each length, the first code, and symbols in code order. */
const huffman = (() => {
  const maxLength = 30;
  const count = new Array<number>(maxLength + 1).fill(0);
  for (const len of HUFFMAN_LENGTHS) count[len] = (count[len] ?? 0) + 1;
  const symbols = HUFFMAN_LENGTHS.map((len, symbol) => ({ len, symbol }))
    .sort((a, b) => a.len - b.len || a.symbol - b.symbol)
    .map((s) => s.symbol);
  const firstCode = new Array<number>(maxLength + 1).fill(0);
  const offset = new Array<number>(maxLength + 1).fill(0);
  let code = 0;
  let index = 0;
  for (let len = 1; len <= maxLength; len++) {
    firstCode[len] = code;
    offset[len] = index;
    code = (code + (count[len] ?? 0)) << 1;
    index += count[len] ?? 0;
  }
  return { count, symbols, firstCode, offset, maxLength };
})();

/**
 * Decodes a Huffman-coded string of at most `maxLength` characters. The
 * shortest code is 5 bits, so a string can decode to 8/5 of its bytes; the
 * output is sized once and decoding stops as soon as it would pass the bound.
 */
function huffmanDecode(bytes: Uint8Array, maxLength: number): string {
  const out = Buffer.allocUnsafe(Math.min(maxLength, Math.ceil((bytes.length * 8) / 5)));
  let written = 0;
  let code = 0;
  let len = 0;
  for (const byte of bytes) {
    for (let bit = 7; bit >= 0; bit--) {
      code = (code << 1) | ((byte >> bit) & 1);
      len++;
      const index = code - (huffman.firstCode[len] ?? 0);
      if (index >= 0 && index < (huffman.count[len] ?? 0)) {
        const symbol = huffman.symbols[(huffman.offset[len] ?? 0) + index] ?? EOS;
        if (symbol === EOS) throw new HpackError("EOS symbol inside a Huffman-coded string");
        if (written >= out.length) throw new HpackLimitError(`a header field decodes to more than ${maxLength} bytes`);
        out[written++] = symbol;
        code = 0;
        len = 0;
      } else if (len > huffman.maxLength) {
        throw new HpackError("invalid Huffman code");
      }
    }
  }
  // Padding: fewer than 8 bits, all ones (a prefix of EOS).
  if (len > 7 || code !== (1 << len) - 1) throw new HpackError("invalid Huffman padding");
  return out.toString("latin1", 0, written);
}

class Reader {
  pos = 0;
  constructor(readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.bytes.length;
  }

  byte(): number {
    const b = this.bytes[this.pos];
    if (b === undefined) throw new HpackError("header block ends in the middle of a field");
    this.pos++;
    return b;
  }

  integer(prefixBits: number, first: number): number {
    const max = (1 << prefixBits) - 1;
    let value = first & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      const b = this.byte();
      value += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if ((b & 0x80) === 0) break;
      if (shift > 28) throw new HpackError("integer too large");
    }
    return value;
  }

  /**
   * A string of at most `maxLength` characters once decoded. Its encoded length
   * is checked before any decoding: a Huffman code is at most 30 bits a symbol.
   */
  string(maxLength: number): string {
    const first = this.byte();
    const length = this.integer(7, first);
    if (this.pos + length > this.bytes.length) throw new HpackError("string longer than the header block");
    const huffmanCoded = (first & 0x80) !== 0;
    if (length > (huffmanCoded ? Math.floor((maxLength * 30) / 8) : maxLength)) {
      throw new HpackLimitError(`a header field is longer than the ${maxLength} bytes left in the header list`);
    }
    const raw = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return huffmanCoded ? huffmanDecode(raw, maxLength) : Buffer.from(raw).toString("latin1");
  }
}

/** Decodes the header blocks of one connection direction; keeps the dynamic table between blocks. */
export class HpackDecoder {
  readonly #table: HeaderField[] = []; // newest first
  #size = 0;
  #maxSize: number;

  constructor(readonly limit = 4096) {
    this.#maxSize = limit;
  }

  /**
   * Decodes one header block. Stops with HpackLimitError as soon as the
   * decoded list would pass `maxListSize`, before decoding the field that
   * would pass it, so a hostile block costs at most that much work and memory.
   */
  decode(block: Uint8Array, maxListSize: number = HTTP2.maxHeaderListSize): HeaderField[] {
    const r = new Reader(block);
    const fields: HeaderField[] = [];
    let listSize = 0;
    const add = (field: HeaderField) => {
      listSize += entrySize(field);
      if (listSize > maxListSize) throw new HpackLimitError(`the header list is larger than ${maxListSize} bytes`);
      fields.push(field);
    };
    const left = () => Math.max(0, maxListSize - listSize - FIELD_OVERHEAD);
    while (!r.done) {
      const first = r.byte();
      if (first & 0x80) {
        add(this.#lookup(r.integer(7, first)));
      } else if (first & 0x40) {
        const field = this.#literal(r, r.integer(6, first), left());
        this.#insert(field);
        add(field);
      } else if (first & 0x20) {
        const size = r.integer(5, first);
        if (size > this.limit) throw new HpackError(`dynamic table size ${size} exceeds the limit ${this.limit}`);
        this.#maxSize = size;
        this.#evict();
      } else {
        add(this.#literal(r, r.integer(4, first), left()));
      }
    }
    return fields;
  }

  #literal(r: Reader, nameIndex: number, maxLength: number): HeaderField {
    const name = nameIndex === 0 ? r.string(maxLength) : this.#lookup(nameIndex).name;
    return { name, value: r.string(Math.max(0, maxLength - name.length)) };
  }

  #lookup(index: number): HeaderField {
    if (index === 0) throw new HpackError("index 0 is not valid");
    const field = index <= STATIC_TABLE.length ? STATIC_TABLE[index - 1] : this.#table[index - STATIC_TABLE.length - 1];
    if (!field) throw new HpackError(`index ${index} is not in the table`);
    return field;
  }

  #insert(field: HeaderField): void {
    this.#table.unshift(field);
    this.#size += entrySize(field);
    this.#evict();
  }

  #evict(): void {
    while (this.#size > this.#maxSize) {
      const oldest = this.#table.pop();
      if (!oldest) break;
      this.#size -= entrySize(oldest);
    }
  }
}

function entrySize(field: HeaderField): number {
  return field.name.length + field.value.length + FIELD_OVERHEAD;
}

function encodeInteger(out: number[], value: number, prefixBits: number, flags: number): void {
  const max = (1 << prefixBits) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  let rest = value - max;
  while (rest >= 0x80) {
    out.push((rest % 0x80) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function encodeString(out: number[], value: string): void {
  const bytes = Buffer.from(value, "latin1");
  encodeInteger(out, bytes.length, 7, 0);
  for (const b of bytes) out.push(b);
}

const STATIC_NAME_INDEX = new Map<string, number>();
STATIC_TABLE.forEach((f, i) => {
  if (!STATIC_NAME_INDEX.has(f.name)) STATIC_NAME_INDEX.set(f.name, i + 1);
});

/** A header block of literals without indexing: valid for any decoder state, and leaves it unchanged. */
export function encodeHeaderBlock(fields: readonly HeaderField[]): Buffer {
  const out: number[] = [];
  for (const field of fields) {
    const nameIndex = STATIC_NAME_INDEX.get(field.name) ?? 0;
    encodeInteger(out, nameIndex, 4, 0x00);
    if (nameIndex === 0) encodeString(out, field.name);
    encodeString(out, field.value);
  }
  return Buffer.from(out);
}
