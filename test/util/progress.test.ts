import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_PROGRESS_INTERVAL_MS, withProgress } from "../../src/util/progress.js";
import { captureLog } from "../support/log-capture.js";

describe("withProgress", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function deferred() {
    let resolve!: (value: string) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<string>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  }

  it("logs what it waits for and the elapsed time at every interval, and nothing once the work is done", async () => {
    const log = captureLog("info");
    const work = deferred();
    const result = withProgress(
      "mkfs.ext4 on /dev/loop7",
      { log: log.logger, intervalMs: 2_000, fields: { volumeId: "vol-1" } },
      () => work.promise,
    );
    await vi.advanceTimersByTimeAsync(1_999);
    expect(log.records()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    await vi.advanceTimersByTimeAsync(2_000);
    const lines = log.records();
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      level: 30,
      msg: "still waiting",
      waitingFor: "mkfs.ext4 on /dev/loop7",
      volumeId: "vol-1",
      elapsedSeconds: 2,
    });
    expect(lines[1]).toMatchObject({ elapsedSeconds: 4 });
    work.resolve("made");
    await expect(result).resolves.toBe("made");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(log.records()).toHaveLength(2);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("stops when the work fails, and passes the failure on", async () => {
    const log = captureLog("info");
    const work = deferred();
    const result = withProgress("image copy", { log: log.logger, intervalMs: 1_000 }, () => work.promise);
    await vi.advanceTimersByTimeAsync(1_000);
    work.reject(new Error("cp: No space left on device"));
    await expect(result).rejects.toThrow(/No space left/);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(log.records()).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("says nothing for work done within the first interval, and waits 10 s by default", async () => {
    const log = captureLog("info");
    await withProgress("quick", { log: log.logger }, async () => "done");
    const slow = deferred();
    const result = withProgress("slow", { log: log.logger }, () => slow.promise);
    await vi.advanceTimersByTimeAsync(DEFAULT_PROGRESS_INTERVAL_MS - 1);
    expect(log.records()).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(log.records()).toMatchObject([{ waitingFor: "slow", elapsedSeconds: 10 }]);
    slow.resolve("ok");
    await result;
    expect(DEFAULT_PROGRESS_INTERVAL_MS).toBe(10_000);
  });

  it("only runs the work when no logger is given", async () => {
    const work = deferred();
    const result = withProgress("unwatched", undefined, () => work.promise);
    expect(vi.getTimerCount()).toBe(0);
    work.resolve("x");
    await expect(result).resolves.toBe("x");
  });
});
