import type { CapacityRange } from "../gen/csi/v1/csi_pb.js";
import type { SizeRules } from "../backend/backend.js";
import { InvalidArgument, messagePart, OutOfRange, type MessagePart } from "../csi/errors.js";

/** A capacity_range in bytes; 0 means the bound was not given. */
export interface RequestedRange {
  readonly requiredBytes: number;
  readonly limitBytes: number;
}

const UNITS = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** "1073741824 bytes (1 GiB)": exact, and readable. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} bytes`;
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(2);
  return `${bytes} bytes (${shown} ${UNITS[unit]})`;
}

function toBytes(value: bigint, field: string): number {
  if (value < 0n) throw InvalidArgument("%s must not be negative (got %s)", field, value.toString());
  // Beyond 2^53 a number loses precision, but such sizes are far above any backend's maximum anyway.
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
}

/** Parse a capacity_range; undefined when it is absent or sets neither bound. Negative bounds are INVALID_ARGUMENT. */
export function parseCapacityRange(range: CapacityRange | undefined, field = "capacity_range"): RequestedRange | undefined {
  if (range === undefined) return undefined;
  const requiredBytes = toBytes(range.requiredBytes, `${field}.required_bytes`);
  const limitBytes = toBytes(range.limitBytes, `${field}.limit_bytes`);
  if (requiredBytes === 0 && limitBytes === 0) return undefined;
  if (limitBytes > 0 && requiredBytes > limitBytes) {
    throw OutOfRange("%s.required_bytes %s is more than limit_bytes %s", field, formatBytes(requiredBytes), formatBytes(limitBytes));
  }
  return { requiredBytes, limitBytes };
}

function roundUp(bytes: number, unit: number): number {
  return Math.ceil(bytes / unit) * unit;
}

export function roundDown(bytes: number, unit: number): number {
  return Math.floor(bytes / unit) * unit;
}

/**
 * Pick a size within [lower, upper] that is a multiple of the unit, as close
 * to `target` as possible (rounding up), or fail with OUT_OF_RANGE.
 */
function fit(target: number, lower: number, upper: number, unit: number, describe: () => MessagePart): number {
  let size = roundUp(Math.max(target, lower), unit);
  if (size > upper) size = roundDown(upper, unit);
  if (size < lower || size <= 0) throw OutOfRange("%s", describe());
  return size;
}

/**
 * The size of a new volume: the request's required_bytes (or the backend's
 * default, or the source's size when there is a source and no requirement),
 * rounded up to the backend's unit, and within limit_bytes, the backend's
 * bounds and never smaller than the source.
 */
export function sizeForNewVolume(range: RequestedRange | undefined, rules: SizeRules, sourceBytes?: number): number {
  const required = range?.requiredBytes ?? 0;
  const limit = range?.limitBytes ?? 0;
  const source = sourceBytes ?? 0;
  if (limit > 0 && source > limit) {
    throw OutOfRange(
      "the content source is %s, more than capacity_range.limit_bytes %s: a volume cannot be smaller than its source",
      formatBytes(source),
      formatBytes(limit),
    );
  }
  if (required > rules.maxBytes) {
    throw OutOfRange(
      "capacity_range.required_bytes %s is more than the largest volume this backend creates, %s",
      formatBytes(required),
      formatBytes(rules.maxBytes),
    );
  }
  if (limit > 0 && limit < rules.minBytes) {
    throw OutOfRange(
      "capacity_range.limit_bytes %s is less than the smallest volume this backend creates, %s",
      formatBytes(limit),
      formatBytes(rules.minBytes),
    );
  }
  let target = required > 0 ? required : source > 0 ? source : rules.defaultBytes;
  if (required === 0 && limit > 0 && target > limit) target = limit;
  const lower = Math.max(required, rules.minBytes, source);
  const upper = limit > 0 ? Math.min(limit, rules.maxBytes) : rules.maxBytes;
  return fit(target, lower, upper, rules.unitBytes, () =>
    messagePart(
      "no size between %s and %s is a multiple of the allocation unit %s; widen capacity_range",
      formatBytes(lower),
      formatBytes(upper),
      formatBytes(rules.unitBytes),
    ),
  );
}

/** What an expansion request asks for, given the volume's current size. */
export interface ExpansionTarget {
  /** The size to grow to; equal to the current size when the volume is already big enough. */
  readonly sizeBytes: number;
  readonly grows: boolean;
}

/**
 * The size after ControllerExpandVolume. Volumes only grow: a limit_bytes below
 * the current size is OUT_OF_RANGE; a required_bytes at or below it is already
 * satisfied (the spec asks for OK then).
 */
export function sizeForExpansion(range: RequestedRange | undefined, rules: SizeRules, currentBytes: number): ExpansionTarget {
  if (range === undefined) {
    throw InvalidArgument("capacity_range is required: give required_bytes, the size the volume must grow to");
  }
  const { requiredBytes: required, limitBytes: limit } = range;
  if (limit > 0 && currentBytes > limit) {
    throw OutOfRange(
      "the volume is already %s, more than capacity_range.limit_bytes %s: volumes can only grow",
      formatBytes(currentBytes),
      formatBytes(limit),
    );
  }
  const target = required > 0 ? required : limit;
  if (target <= currentBytes) return { sizeBytes: currentBytes, grows: false };
  if (target > rules.maxBytes) {
    throw OutOfRange(
      "capacity_range asks for %s, more than the largest volume this backend supports, %s",
      formatBytes(target),
      formatBytes(rules.maxBytes),
    );
  }
  const upper = limit > 0 ? Math.min(limit, rules.maxBytes) : rules.maxBytes;
  const sizeBytes = fit(target, target, upper, rules.unitBytes, () =>
    messagePart(
      "no size between %s and %s is a multiple of the allocation unit %s; widen capacity_range",
      formatBytes(target),
      formatBytes(upper),
      formatBytes(rules.unitBytes),
    ),
  );
  return { sizeBytes, grows: true };
}
