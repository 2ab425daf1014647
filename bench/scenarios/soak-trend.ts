/**
 * The soak row's verdict: does a series sampled over many volume lives grow?
 * RSS saws up and down with garbage collection (tens of MiB between major
 * collections, hundreds of lives apart), so the verdict reads the floor: the
 * lowest sample of each of a few equal spans of lives after warm-up (the
 * first 10%: start-up, JIT and allocator warm-up). A leak raises the floor;
 * the verdict is growth if the floor's least-squares slope over the second
 * half, or its rise from the first span to the last, exceeds a limit.
 */

export interface SoakSample {
  /** Lives completed when the sample was taken. */
  readonly lives: number;
  readonly rssBytes: number;
  readonly fds: number;
  readonly elapsedMs: number;
}

export interface TrendLimits {
  /** Largest slope over the second half, per 1000 lives, in the series' unit. */
  readonly maxSlopePer1000: number;
  /** Largest rise from just after warm-up to the end. */
  readonly maxDelta: number;
}

export interface Trend {
  /** Floor (lowest sample) of each span after warm-up: lives at the span's end, value. */
  readonly floors: readonly { readonly lives: number; readonly value: number }[];
  readonly slopePer1000: number;
  readonly afterWarmup: number;
  readonly final: number;
  readonly delta: number;
  readonly limits: TrendLimits;
  readonly growth: boolean;
}

/** Least-squares slope of y over x; 0 for fewer than two distinct x. */
export function slope(points: readonly { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, p) => a + p.x, 0) / n;
  const my = points.reduce((a, p) => a + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** The trend of `value` over `samples` (ordered by lives), read from the floors of `spans` spans after warm-up. */
export function trendOf(
  samples: readonly SoakSample[],
  value: (s: SoakSample) => number,
  limits: TrendLimits,
  spans = 8,
  warmupFraction = 0.1,
): Trend {
  const total = samples.at(-1)?.lives ?? 0;
  const start = total * warmupFraction;
  const width = (total - start) / spans;
  const floors: { lives: number; value: number }[] = [];
  for (let i = 0; i < spans; i++) {
    const from = start + i * width;
    const to = i === spans - 1 ? Infinity : from + width;
    const inSpan = samples.filter((s) => s.lives >= from && s.lives < to);
    if (inSpan.length === 0) continue;
    floors.push({ lives: Math.round(Math.min(to, total)), value: Math.min(...inSpan.map(value)) });
  }
  const secondHalf = floors.filter((f) => f.lives > total / 2);
  const slopePer1000 = slope(secondHalf.map((f) => ({ x: f.lives, y: f.value }))) * 1000;
  const afterWarmup = floors[0]?.value ?? NaN;
  const final = floors.at(-1)?.value ?? NaN;
  const delta = final - afterWarmup;
  return {
    floors,
    slopePer1000,
    afterWarmup,
    final,
    delta,
    limits,
    growth: !(slopePer1000 <= limits.maxSlopePer1000 && delta <= limits.maxDelta),
  };
}
