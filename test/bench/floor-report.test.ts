import { describe, expect, it } from "vitest";
import { FLOOR_BEGIN, FLOOR_END, floorSection, replaceFloorSection } from "../../bench/floor-report.js";
import type { RssSample } from "../../bench/lib/proc.js";
import type { FloorMeasure, FloorRuntimeResult } from "../../bench/scenarios/floor.js";
import type { UnaryRun } from "../../bench/scenarios/footprint.js";

describe("the floor section of bench/RESULTS.md", () => {
  it("goes before section 1 the first time, then replaces itself and nothing else", () => {
    const original = "# Results\n\n## Summary\n\nrows\n\n## 1. Node plugin RSS\n\ntext\n";
    const first = replaceFloorSection(original, [FLOOR_BEGIN, "old figures", FLOOR_END]);
    expect(first).toBe(`# Results\n\n## Summary\n\nrows\n\n${FLOOR_BEGIN}\nold figures\n${FLOOR_END}\n\n## 1. Node plugin RSS\n\ntext\n`);
    const second = replaceFloorSection(first, [FLOOR_BEGIN, "new figures", FLOOR_END]);
    expect(second).toBe(first.replace("old figures", "new figures"));
  });

  it("is appended to a file without section 1", () => {
    expect(replaceFloorSection("# Results\n", [FLOOR_BEGIN, FLOOR_END])).toBe(`# Results\n\n${FLOOR_BEGIN}\n${FLOOR_END}\n`);
  });
});

describe("the floor section's figures", () => {
  const MiB = 2 ** 20;
  const sample = (rss: number, anon: number): RssSample => ({ rss: rss * MiB, anon: anon * MiB, file: (rss - anon) * MiB, hwm: rss * MiB });
  const run = (cpu: number): UnaryRun => ({
    method: "probe",
    concurrency: 64,
    calls: 1000,
    wallMs: 1,
    driverCpuUsPerCall: cpu,
    clientCpuUsPerCall: 1,
    segments: [],
  });
  const measure = (subject: string, idle: readonly RssSample[]): FloorMeasure => ({
    subject,
    nodeOptions: "",
    readyMs: [100, 110, 120],
    idle: idle[0] ?? sample(0, 0),
    idleSamples: idle,
    idleCpuUs: 0,
    afterFirst: sample(70, 20),
    afterTotal: sample(71, 21),
    firstRun: run(50),
    restRun: run(40),
  });

  it("takes idle RSS as the median over the subject's processes, with its anonymous / file split", () => {
    const results: FloorRuntimeResult[] = [
      {
        runtime: { name: "test Node", node: "node", version: "0.0.0" },
        measures: [
          measure("baseline", [sample(50, 10), sample(48, 10), sample(49, 9)]),
          measure("driver", [sample(60, 16), sample(66, 16), sample(61, 17)]),
        ],
      },
    ];
    const text = floorSection(results, "now", {}).join("\n");
    // Baseline median 49 MiB (target 52), driver median 61 MiB (anon 17 of it).
    expect(text).toContain("| RSS idle (MiB) | <= 52.0 MiB | 49.0 (anon 9.0 / file 40.0) | 61.0 (anon 17.0 / file 44.0) **miss** (+9.0) |");
    // The loaded rows' target is the baseline's median idle + 10 MiB.
    expect(text).toContain("| RSS after 100k Probes (MiB) | <= 59.0 MiB |");
  });

  it("takes the load figures as the median over the processes put under load, with the median sample's split", () => {
    const load = (first: number, total: number, anon: number, cpu: number) => ({
      afterFirst: sample(first, anon),
      afterTotal: sample(total, anon),
      firstCpuUsPerCall: cpu + 20,
      restCpuUsPerCall: cpu,
      p50Us: cpu * 100,
      p99Us: cpu * 200,
    });
    const results: FloorRuntimeResult[] = [
      {
        runtime: { name: "test Node", node: "node", version: "0.0.0" },
        measures: [
          { ...measure("baseline", [sample(50, 10)]), loads: [load(90, 95, 50, 40), load(92, 96, 51, 38), load(91, 94, 52, 39)] },
          { ...measure("driver", [sample(55, 14)]), loads: [load(80, 82, 30, 90), load(60, 61, 18, 60), load(66, 65, 21, 70)] },
        ],
      },
    ];
    const text = floorSection(results, "now", {}).join("\n");
    // Driver: after 20k the median of 80 / 60 / 66 is 66 (anon 21), after 100k of 82 / 61 / 65 is 65; CPU median 70 (first 90).
    expect(text).toContain(
      "| RSS after 20k Probes (MiB) | <= 60.0 MiB | 91.0 (anon 52.0 / file 39.0) | 66.0 (anon 21.0 / file 45.0) **miss** (+6.0) |",
    );
    expect(text).toContain(
      "| RSS after 100k Probes (MiB) | <= 60.0 MiB | 95.0 (anon 50.0 / file 45.0) | 65.0 (anon 21.0 / file 44.0) **miss** (+5.0) |",
    );
    // Baseline CPU median 39: target 78.
    expect(text).toContain("| CPU per Probe (µs) | <= 78.0 µs | 39.0 (59) | 70.0 (90) **pass** |");
    expect(text).toContain("| 3900 / 7800 | 7000 / 14000 |");
  });
  it("weighs the image's former heap flags against the driver as shipped, when the image sets none", () => {
    const results: FloorRuntimeResult[] = [
      {
        runtime: { name: "test Node", node: "node", version: "0.0.0" },
        measures: [
          measure("baseline", [sample(50, 10)]),
          measure("driver", [sample(55, 14)]),
          { ...measure("driver, former heap flags", [sample(56, 14)]), nodeOptions: "--max-old-space-size=64", readyMs: [130, 140, 150] },
        ],
      },
    ];
    const text = floorSection(results, "now", {}).join("\n");
    expect(text).toContain("driver, former heap flags (`--max-old-space-size=64`)");
    expect(text).toContain(
      "(read from the Dockerfile; it sets none) and, for the lever's before/after, with the heap flags the image set until 2026-12-05",
    );
    // The introduction is one paragraph of prose: no source-code joins leak into it.
    expect(text).not.toContain('" +');
    expect(text).toContain(
      '- No V8 flags in the image (before: `NODE_OPTIONS="--max-old-space-size=64"`; after: none, the plugin holding its young generation and trimming its heap itself), test Node v0.0.0: RSS after 20k Probes 70.0 -> 70.0 MiB, after 100k 71.0 -> 71.0 MiB, idle 56.0 -> 55.0 MiB, CPU per Probe 40 -> 40 µs, start-up 140 -> 110 ms.',
    );
  });
});
