/** Summary of repeated measurements: the median is the figure reported, min/max the spread. */
export interface Summary {
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly n: number;
  readonly values: readonly number[];
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) throw new Error("no values to summarize");
  const sorted = [...values].sort((a, b) => a - b);
  return { median: quantileSorted(sorted, 0.5), min: sorted[0] ?? NaN, max: sorted.at(-1) ?? NaN, n: sorted.length, values: [...values] };
}

/** Quantile by linear interpolation between closest ranks, of an ascending array. */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? NaN;
  const b = sorted[hi] ?? NaN;
  return a + (b - a) * (pos - lo);
}

/** Round to `digits` significant decimals for display and JSON. */
export function round(value: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** "12.3 (11.9-13.0)" */
export function spread(s: Summary, digits = 1, unit = ""): string {
  if (s.n === 1) return `${s.median.toFixed(digits)}${unit}`;
  return `${s.median.toFixed(digits)}${unit} (${s.min.toFixed(digits)}-${s.max.toFixed(digits)})`;
}
