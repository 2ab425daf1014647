import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { encodeHeaderBlock, HpackDecoder, HpackError, type HeaderField } from "../../src/csi/hpack.js";

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
