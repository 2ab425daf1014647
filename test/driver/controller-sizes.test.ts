import { create } from "@bufbuild/protobuf";
import { CsiError } from "../../src/errors.js";
import { describe, expect, it } from "vitest";
import type { SizeRules } from "../../src/backend/backend.js";
import { parseCapacityRange, sizeForExpansion, sizeForNewVolume } from "../../src/driver/capacity.js";
import { formatBytes } from "../../src/util/bytes.js";
import { CapacityRangeSchema } from "../../src/gen/csi/v1/csi_pb.js";
import { Code, GiB, MiB } from "./controller-harness.js";

const rules: SizeRules = { minBytes: MiB, maxBytes: 16 * 1024 * GiB, defaultBytes: GiB, unitBytes: MiB };
const range = (requiredBytes: number, limitBytes = 0) => ({ requiredBytes, limitBytes });

function codeOfThrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CsiError) return Code[err.code] ?? String(err.code);
    throw err;
  }
  return "OK";
}

describe("parseCapacityRange", () => {
  it("treats an absent or empty range as unspecified and rejects negative or inverted bounds", () => {
    expect(parseCapacityRange(undefined)).toBeUndefined();
    expect(parseCapacityRange(create(CapacityRangeSchema, {}))).toBeUndefined();
    expect(parseCapacityRange(create(CapacityRangeSchema, { requiredBytes: 5n, limitBytes: 9n }))).toEqual(range(5, 9));
    expect(codeOfThrown(() => parseCapacityRange(create(CapacityRangeSchema, { requiredBytes: -1n })))).toBe("InvalidArgument");
    expect(codeOfThrown(() => parseCapacityRange(create(CapacityRangeSchema, { limitBytes: -1n })))).toBe("InvalidArgument");
    expect(codeOfThrown(() => parseCapacityRange(create(CapacityRangeSchema, { requiredBytes: 10n, limitBytes: 9n })))).toBe("OutOfRange");
    // Beyond 2^53: still comparable, and far above any maximum.
    expect(parseCapacityRange(create(CapacityRangeSchema, { requiredBytes: 1n << 62n }))?.requiredBytes).toBe(Number.MAX_SAFE_INTEGER);
  });
});

describe("sizeForNewVolume", () => {
  it("defaults, rounds up to the unit and respects the limit", () => {
    expect(sizeForNewVolume(undefined, rules)).toBe(GiB);
    expect(sizeForNewVolume(range(1), rules)).toBe(MiB);
    expect(sizeForNewVolume(range(MiB + 1), rules)).toBe(2 * MiB);
    expect(sizeForNewVolume(range(0, 10 * MiB), rules)).toBe(10 * MiB);
    expect(sizeForNewVolume(range(0, 10 * MiB + 7), rules)).toBe(10 * MiB);
    expect(sizeForNewVolume(range(MiB + 1, 3 * MiB), rules)).toBe(2 * MiB);
    expect(sizeForNewVolume(range(0, 3 * GiB), rules)).toBe(GiB);
  });

  it("never makes a volume smaller than its source", () => {
    expect(sizeForNewVolume(undefined, rules, 300 * MiB)).toBe(300 * MiB);
    expect(sizeForNewVolume(undefined, rules, 300 * MiB + 1)).toBe(301 * MiB);
    expect(sizeForNewVolume(range(MiB), rules, 300 * MiB)).toBe(300 * MiB);
    expect(sizeForNewVolume(range(GiB), rules, 300 * MiB)).toBe(GiB);
    expect(codeOfThrown(() => sizeForNewVolume(range(0, 200 * MiB), rules, 300 * MiB))).toBe("OutOfRange");
  });

  it("answers OUT_OF_RANGE outside the backend's bounds or when no multiple of the unit fits", () => {
    expect(codeOfThrown(() => sizeForNewVolume(range(rules.maxBytes + 1), rules))).toBe("OutOfRange");
    expect(sizeForNewVolume(range(rules.maxBytes), rules)).toBe(rules.maxBytes);
    expect(codeOfThrown(() => sizeForNewVolume(range(0, MiB - 1), rules))).toBe("OutOfRange");
    expect(codeOfThrown(() => sizeForNewVolume(range(MiB + 1, 2 * MiB - 1), rules))).toBe("OutOfRange");
  });
});

describe("sizeForExpansion", () => {
  it("grows to the requirement rounded up, and treats a reached size as done", () => {
    expect(sizeForExpansion(range(10 * MiB + 1), rules, 5 * MiB)).toEqual({ sizeBytes: 11 * MiB, grows: true });
    expect(sizeForExpansion(range(5 * MiB), rules, 5 * MiB)).toEqual({ sizeBytes: 5 * MiB, grows: false });
    expect(sizeForExpansion(range(MiB), rules, 5 * MiB)).toEqual({ sizeBytes: 5 * MiB, grows: false });
    expect(sizeForExpansion(range(0, 8 * MiB), rules, 5 * MiB)).toEqual({ sizeBytes: 8 * MiB, grows: true });
  });

  it("refuses to shrink below the current size, and needs a range", () => {
    expect(codeOfThrown(() => sizeForExpansion(range(MiB, 2 * MiB), rules, 5 * MiB))).toBe("OutOfRange");
    expect(codeOfThrown(() => sizeForExpansion(undefined, rules, 5 * MiB))).toBe("InvalidArgument");
    expect(codeOfThrown(() => sizeForExpansion(range(rules.maxBytes + MiB), rules, 5 * MiB))).toBe("OutOfRange");
    expect(codeOfThrown(() => sizeForExpansion(range(6 * MiB + 1, 7 * MiB - 1), rules, 5 * MiB))).toBe("OutOfRange");
  });
});

describe("formatBytes", () => {
  it("is exact and readable", () => {
    expect(formatBytes(512)).toBe("512 bytes");
    expect(formatBytes(GiB)).toBe("1073741824 bytes (1 GiB)");
    expect(formatBytes(1536 * MiB)).toBe("1610612736 bytes (1.50 GiB)");
  });
});
