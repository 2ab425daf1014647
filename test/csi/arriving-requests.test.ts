import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type ArrivingRequest, ArrivingRequests } from "../../src/csi/arriving-requests.js";

class Request implements ArrivingRequest {
  arrivingSince: number | undefined;
  newerArriving: ArrivingRequest | undefined;
  olderArriving: ArrivingRequest | undefined;
  timedOutAt: number | undefined;
  constructor(readonly list: ArrivingRequests) {}
  arrivalTimedOut(): void {
    // It has left the list before it is told.
    expect(this.arrivingSince).toBeUndefined();
    this.timedOutAt = Date.now();
  }
}

describe("ArrivingRequests: requests still arriving, each bounded in time by one timer", () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("times out each request that has not arrived within the bound, at its own time, oldest first", () => {
    const list = new ArrivingRequests(1000);
    const a = new Request(list);
    const b = new Request(list);
    const c = new Request(list);
    list.add(a, Date.now());
    vi.advanceTimersByTime(300);
    list.add(b, Date.now());
    vi.advanceTimersByTime(300);
    list.add(c, Date.now());
    expect(list.size).toBe(3);
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(399);
    expect(a.timedOutAt).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(a.timedOutAt).toBe(1_001_000);
    expect(b.timedOutAt).toBeUndefined();
    vi.advanceTimersByTime(300);
    expect(b.timedOutAt).toBe(1_001_300);
    vi.advanceTimersByTime(300);
    expect(c.timedOutAt).toBe(1_001_600);
    expect(list.size).toBe(0);
    // Nothing left: no timer either.
    expect(vi.getTimerCount()).toBe(0);
  });

  it("never times out a request that arrived, was refused or went away, from any place in the list", () => {
    const list = new ArrivingRequests(1000);
    const requests = Array.from({ length: 5 }, () => new Request(list));
    for (const r of requests) list.add(r, Date.now());
    // The middle, the oldest and the newest leave; removing twice, or one never added, changes nothing.
    for (const i of [2, 0, 4, 2]) list.remove(requests[i] as Request);
    list.remove(new Request(list));
    expect(list.size).toBe(2);
    vi.advanceTimersByTime(1000);
    expect(requests.map((r) => r.timedOutAt !== undefined)).toEqual([false, true, false, true, false]);
    expect(list.size).toBe(0);
  });

  it("keeps one timer however many requests come and go, and re-arms it for the oldest left", () => {
    const list = new ArrivingRequests(1000);
    for (let i = 0; i < 10_000; i++) {
      const r = new Request(list);
      list.add(r, Date.now());
      list.remove(r);
      vi.advanceTimersByTime(1);
      expect(vi.getTimerCount()).toBeLessThanOrEqual(1);
    }
    const slow = new Request(list);
    list.add(slow, Date.now());
    vi.advanceTimersByTime(999);
    expect(slow.timedOutAt).toBeUndefined();
    vi.advanceTimersByTime(1);
    expect(slow.timedOutAt).toBe(1_011_000);
  });

  it("never waits longer than the bound when the clock was set back", () => {
    const list = new ArrivingRequests(1000);
    const r = new Request(list);
    // Arrived "in the future" by the clock's reading now.
    list.add(r, Date.now() + 60_000);
    vi.advanceTimersByTime(1000);
    expect(r.timedOutAt).toBeUndefined();
    expect(vi.getTimerCount()).toBe(1);
    list.remove(r);
    list.stop();
    expect(vi.getTimerCount()).toBe(0);
  });

  it("takes a request once however often it is added", () => {
    const list = new ArrivingRequests(1000);
    const r = new Request(list);
    list.add(r, Date.now());
    list.add(r, Date.now() + 500);
    expect(list.size).toBe(1);
    vi.advanceTimersByTime(1000);
    expect(r.timedOutAt).toBe(1_001_000);
  });
});
