/**
 * What "quiet" means to the heap trimmer (src/cli/heap-trim.ts), in this
 * process: an event loop busy without allocating (so without a garbage
 * collection to say so) is not quiet, and the trim waits until the loop has
 * been idle for the quiet time. The process-level test (heap-trim.test.ts)
 * covers the trims after start-up and after a burst of calls.
 */
import { afterEach, describe, expect, it } from "vitest";
import { type HeapTrimmer, startHeapTrimmer } from "../../src/cli/heap-trim.js";
import { captureLog } from "../support/log-capture.js";

const QUIET_MS = 200;

const BLOCK = new Int32Array(new SharedArrayBuffer(4));

/**
 * Keeps the event loop busy for `ms` in 20 ms slices, with the loop turning
 * between them (timers run), allocating next to nothing: each slice blocks in
 * Atomics.wait, so no garbage collection runs to say the process is busy.
 */
async function busyWithoutGarbage(ms: number): Promise<void> {
  const slices = Math.ceil(ms / 20);
  for (let i = 0; i < slices; i++) {
    Atomics.wait(BLOCK, 0, 0, 20);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function until(what: string, done: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("the heap trimmer's quiet time", () => {
  let trimmer: HeapTrimmer | undefined;
  afterEach(() => {
    trimmer?.stop();
    trimmer = undefined;
  });

  it("does not trim while the event loop is busy, even without a garbage collection, and trims once it is idle", async () => {
    const log = captureLog("debug");
    trimmer = startHeapTrimmer({ quietMs: QUIET_MS, minGrowthBytes: 0, log: log.logger });
    const running = trimmer;
    // Busy for five quiet times: no trim.
    await busyWithoutGarbage(QUIET_MS * 5);
    expect(running.trims).toBe(0);
    // Idle: the trim follows within a few samples.
    await until("the trim once idle", () => running.trims === 1);
    expect(log.records().filter((r) => r.msg === "heap trimmed after a quiet time")).toHaveLength(1);
  });

  it("stops: no trim after stop()", async () => {
    const log = captureLog("debug");
    trimmer = startHeapTrimmer({ quietMs: QUIET_MS, minGrowthBytes: 0, log: log.logger });
    trimmer.stop();
    await new Promise((resolve) => setTimeout(resolve, QUIET_MS * 3));
    expect(trimmer.trims).toBe(0);
  });
});
