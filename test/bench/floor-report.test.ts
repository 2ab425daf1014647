import { describe, expect, it } from "vitest";
import { FLOOR_BEGIN, FLOOR_END, replaceFloorSection } from "../../bench/floor-report.js";

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
