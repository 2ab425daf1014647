import { describe, expect, it } from "vitest";
import { FD_LIMITS, RSS_LIMITS } from "../../bench/scenarios/soak.js";
import { slope, trendOf, type SoakSample } from "../../bench/scenarios/soak-trend.js";

const MiB = 1024 * 1024;

/** 10,000 lives sampled every 50: RSS saws 25 MiB up between collections every ~900 lives, plus `leakPerLife`. */
function run(leakPerLife: number, fdsEvery = 0): SoakSample[] {
  const samples: SoakSample[] = [];
  for (let lives = 0; lives <= 10_000; lives += 50) {
    const saw = ((lives % 900) / 900) * 25 * MiB;
    samples.push({
      lives,
      rssBytes: 70 * MiB + saw + lives * leakPerLife,
      fds: 22 + (fdsEvery > 0 ? Math.floor(lives / fdsEvery) : 0),
      elapsedMs: lives,
    });
  }
  return samples;
}

describe("the soak verdict", () => {
  it("fits a least-squares slope", () => {
    expect(
      slope([
        { x: 0, y: 1 },
        { x: 10, y: 21 },
        { x: 20, y: 41 },
      ]),
    ).toBeCloseTo(2);
    expect(slope([{ x: 5, y: 3 }])).toBe(0);
  });

  it("reads a garbage-collection sawtooth without a leak as no growth, whatever phase it ends in", () => {
    const rss = trendOf(run(0), (s) => s.rssBytes, RSS_LIMITS);
    expect(rss.growth).toBe(false);
    expect(Math.abs(rss.delta)).toBeLessThan(MiB);
    // The same series cut off at a sawtooth peak.
    const atPeak = run(0).filter((s) => s.lives <= 9_850);
    expect(trendOf(atPeak, (s) => s.rssBytes, RSS_LIMITS).growth).toBe(false);
  });

  it("finds a leak of 2 KiB per life under the sawtooth", () => {
    const rss = trendOf(run(2048), (s) => s.rssBytes, RSS_LIMITS);
    expect(rss.growth).toBe(true);
    expect(rss.slopePer1000 / MiB).toBeCloseTo(2, 0);
  });

  it("finds one file descriptor leaked every 500 lives, and none when the count holds", () => {
    expect(trendOf(run(0, 500), (s) => s.fds, FD_LIMITS).growth).toBe(true);
    expect(trendOf(run(0), (s) => s.fds, FD_LIMITS).growth).toBe(false);
  });
});
