import { describe, expect, it } from "vitest";
import { pageAfter } from "../../../src/backend/local/list-order.js";

const records = (positions: number[]) => positions.map((listPosition) => ({ listPosition }));

describe("pageAfter", () => {
  it("returns the records after a position, a page at a time, each once", () => {
    const ordered = records([2, 3, 5, 8, 13, 21, 34]);
    expect(pageAfter(ordered, 0, 3)).toEqual({ page: records([2, 3, 5]), more: true });
    expect(pageAfter(ordered, 5, 3)).toEqual({ page: records([8, 13, 21]), more: true });
    expect(pageAfter(ordered, 21, 3)).toEqual({ page: records([34]), more: false });
    expect(pageAfter(ordered, 34, 3)).toEqual({ page: [], more: false });
    // A token between positions (the record it named was deleted) continues with the next one.
    expect(pageAfter(ordered, 6, 2)).toEqual({ page: records([8, 13]), more: true });
    expect(pageAfter(ordered, 0, 0)).toEqual({ page: ordered, more: false });
    expect(pageAfter(ordered, 13, 2)).toEqual({ page: records([21, 34]), more: false });
  });

  it("walks 10,000 records in pages of 500 with every position exactly once", () => {
    const ordered = records(Array.from({ length: 10_000 }, (_, i) => i * 2 + 1));
    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const { page, more } = pageAfter(ordered, after, 500);
      seen.push(...page.map((r) => r.listPosition));
      if (!more) break;
      after = page.at(-1)?.listPosition ?? after;
    }
    expect(seen).toEqual(ordered.map((r) => r.listPosition));
  });
});
