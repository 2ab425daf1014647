import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { encodeHeaderBlock, HpackDecoder, HpackError, HpackLimitError, type HeaderField } from "../../src/csi/hpack.js";
import { HTTP2 } from "../../src/csi/transport-limits.js";
import { hpackInteger, huffmanField } from "./raw-http2.js";

// hpack.js (a widely used HPACK implementation) is the oracle: what it encodes,
// with Huffman coding and dynamic-table indexing, our decoder must read back.
const require = createRequire(import.meta.url);
interface HpackJs {
  compressor: {
    create(o: { table: { maxSize: number } }): {
      write(h: { name: string; value: string; huffman?: boolean }[]): void;
      read(): Buffer | null;
    };
  };
  decompressor: {
    create(o: { table: { maxSize: number } }): { write(b: Buffer): void; execute(): void; read(): { name: string; value: string } | null };
  };
}
const hpackjs = require("hpack.js") as HpackJs;

function oracleEncode(compressor: ReturnType<HpackJs["compressor"]["create"]>, fields: HeaderField[]): Buffer {
  compressor.write(fields.map((f) => ({ ...f })));
  const chunks: Buffer[] = [];
  for (let chunk = compressor.read(); chunk; chunk = compressor.read()) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("HpackDecoder", () => {
  it("reads gRPC request headers across many blocks, with Huffman strings, indexing and eviction", () => {
    const tableSize = 1024; // small, so entries are evicted often
    const compressor = hpackjs.compressor.create({ table: { maxSize: tableSize } });
    const decoder = new HpackDecoder(tableSize);
    for (let i = 0; i < 200; i++) {
      const fields: HeaderField[] = [
        { name: ":method", value: "POST" },
        { name: ":scheme", value: "http" },
        { name: ":path", value: `/csi.v1.Node/NodeStageVolume${i % 7}` },
        { name: ":authority", value: i % 3 === 0 ? "/var/lib/kubelet/plugins/dobs.csi.digitalocean.com/csi.sock" : "localhost" },
        { name: "content-type", value: "application/grpc" },
        { name: "user-agent", value: `grpc-go/1.${i}.0` },
        { name: "te", value: "trailers" },
        { name: "grpc-timeout", value: `${i}m` },
        { name: `x-custom-${i % 5}`, value: "v".repeat(i % 40) + "!~" },
        // Large values fill the dynamic table, so older entries are evicted often.
        { name: `x-bulk-${i % 11}`, value: `${i}`.padEnd(300 + (i % 13) * 37, "q") },
      ];
      expect(decoder.decode(oracleEncode(compressor, fields))).toEqual(fields);
    }
  });

  it("decodes every byte value through Huffman coding", () => {
    const compressor = hpackjs.compressor.create({ table: { maxSize: 4096 } });
    const all = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i)).join("");
    const fields = [{ name: "x-all-bytes", value: all }];
    expect(new HpackDecoder().decode(oracleEncode(compressor, fields))).toEqual(fields);
  });

  it("rejects malformed blocks instead of guessing", () => {
    expect(() => new HpackDecoder().decode(Buffer.from([0x80]))).toThrow(HpackError); // index 0
    expect(() => new HpackDecoder().decode(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]))).toThrow(HpackError); // index too large
    expect(() => new HpackDecoder().decode(Buffer.from([0x41, 0x85, 0x00]))).toThrow(HpackError); // truncated string
  });
});

describe("HpackDecoder limits", () => {
  /** A literal field without indexing, with a new name, sent as is (no Huffman coding). */
  const literal = (name: string, value: string) =>
    Buffer.concat([
      Buffer.from([0x00]),
      hpackInteger(name.length, 7, 0),
      Buffer.from(name),
      hpackInteger(value.length, 7, 0),
      Buffer.from(value),
    ]);

  it("accepts a header list exactly at the limit and rejects one byte more", () => {
    const limit = 1000;
    const value = "v".repeat(limit - 32 - 1); // name "x" + value + 32 = limit
    expect(new HpackDecoder().decode(literal("x", value), limit)).toEqual([{ name: "x", value }]);
    expect(() => new HpackDecoder().decode(literal("x", `${value}v`), limit)).toThrow(HpackLimitError);
    expect(HTTP2.maxHeaderListSize).toBe(65_535); // what nghttp2 accepts under Node by default
  });

  it("rejects a Huffman string by its encoded length before decoding any of it", () => {
    // 0xff bytes are no valid Huffman code: decoding them would fail differently. The length alone must reject it.
    const length = Math.floor((1000 * 30) / 8) + 1;
    const block = Buffer.concat([Buffer.from([0x00, 0x01]), Buffer.from("x"), hpackInteger(length, 7, 0x80), Buffer.alloc(length, 0xff)]);
    expect(() => new HpackDecoder().decode(block, 1000)).toThrow(HpackLimitError);
  });

  it("stops decoding a Huffman string as soon as its output passes the limit", () => {
    // 5 000 bytes of 5-bit codes are 8 000 characters: within 30/8 of the limit as encoded, past it once decoded.
    const block = huffmanField("x", 5_000);
    expect(new HpackDecoder().decode(block, 10_000)[0]?.value).toBe("a".repeat(8_000));
    expect(() => new HpackDecoder().decode(block, 4_000)).toThrow(/decodes to more than/);
  });

  it("rejects a block whose references to the dynamic table expand past the limit", () => {
    const decoder = new HpackDecoder();
    // Index a 4 000-byte field, then refer to it 16 000 times with one byte each: 16 KiB that would decode to 62 MiB.
    const indexed = Buffer.concat([
      Buffer.from([0x40]),
      hpackInteger(3, 7, 0),
      Buffer.from("x-a"),
      hpackInteger(4000, 7, 0),
      Buffer.alloc(4000, 0x61),
    ]);
    const block = Buffer.concat([indexed, Buffer.alloc(16_000, 0xbe)]);
    expect(() => decoder.decode(block)).toThrow(HpackLimitError);
  });
});

describe("encodeHeaderBlock", () => {
  it("produces blocks any HPACK decoder reads back unchanged", () => {
    const fields: HeaderField[] = [
      { name: ":authority", value: "localhost" },
      { name: ":path", value: "/csi.v1.Identity/Probe" },
      { name: "grpc-timeout", value: "1S" },
      { name: "x-long", value: "a".repeat(300) },
    ];
    const block = encodeHeaderBlock(fields);
    expect(new HpackDecoder().decode(block)).toEqual(fields);
    const oracle = hpackjs.decompressor.create({ table: { maxSize: 4096 } });
    oracle.write(block);
    oracle.execute();
    const decoded: HeaderField[] = [];
    for (let h = oracle.read(); h; h = oracle.read()) decoded.push({ name: h.name, value: h.value });
    expect(decoded).toEqual(fields);
  });
});
