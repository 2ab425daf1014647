/**
 * Gives the memory a burst of calls grew the heap by back to the system once
 * the plugin is quiet again.
 *
 * Under load V8 grows the young generation and the old space, and after the
 * burst it keeps their pages until its memory reducer runs: 8 s or more later
 * on Node 22, and on Node 20 the young generation stays at its largest. A node
 * plugin's load is bursts (kubelet's calls, a sidecar's retries) with long quiet
 * times between them, so it would hold its peak heap most of the time. Once
 * the event loop has been quiet for `quietMs` (busy at most 2% of the time)
 * and the heap has grown by `minGrowthBytes` since the last trim, one full
 * collection that reduces memory returns the free pages: on the image's Node a
 * burst of 20,000 Probes at concurrency 64 leaves about 13 MiB less resident
 * (bench/RESULTS.md).
 *
 * Idle, nothing runs until the next garbage collection (a PerformanceObserver)
 * says the plugin is busy again; busy, the observer is off, since it costs on
 * every collection, and the event loop's utilization is sampled a few times
 * per `quietMs` instead.
 *
 * Once after start-up too: start-up's garbage and, on Node 22, where the
 * collection shrinks the young generation, the pages V8 pooled for it are then
 * given back, about 2.3 MiB of an idle plugin's RSS (59.4 -> 57.1 MiB, by
 * hand; on Node 20, with its two collections, 52.8 -> 51.6 MiB). On Node 22
 * the young generation then stays at the 1 MiB it is shrunk to (v8-flags.ts
 * stops its growth): allowed to grow to 4 MiB again, the CPU per Probe under
 * load was no lower (59-63 against 56-71 µs, bench/RESULTS.md). That
 * collection also drops the bytecode of every function not running
 * (`--stress-flush-code` while it runs): start-up's code (the protobuf
 * descriptors' construction, module bodies, the command line) never runs
 * again, and what does is compiled again on its next call. On the image's
 * Node the bytecode goes from about 600 to 100 KiB and the idle RSS by
 * another 0.3-0.6 MiB (56.4 -> 56.0 MiB, median of 3, by hand), the first
 * burst's CPU per call within the noise. V8 11 (Node 20) flushes no
 * bytecode from a forced collection.
 *
 * Then glibc gives back the pages its own heap holds free (malloc-trim.ts):
 * the memory a burst allocated outside V8's heap (the compilers' zones,
 * HTTP/2 frames, buffers) is freed in the middle of glibc's heap, which glibc
 * never returns by itself. On the image's Node that is 4-5 MiB after 20,000
 * Probes at concurrency 64, about 2 on Node 20 (bench/RESULTS.md). The image
 * turns glibc's per-thread cache of freed blocks off (GLIBC_TUNABLES in the
 * Dockerfile): a block held there is not free to glibc, and neither is it
 * given back.
 *
 * V8 offers no API for it, so the collection is V8's `gc` from a throwaway
 * context (`--expose-gc` is set only while that context is made):
 * - V8 12 and later (Node 22): `gc({ flavor: "last-resort" })`, the collection
 *   V8 runs when memory is short: it compacts, shrinks the young generation and
 *   releases the pages it pools.
 * - V8 11 (Node 20) has no flavors: two full collections run with
 *   `--optimize-for-size` compact the old space and release its free pages.
 */
import { PerformanceObserver, performance } from "node:perf_hooks";
import { getHeapCodeStatistics, getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Logger } from "../log/logger.js";
import { mallocTrimmer } from "./malloc-trim.js";

export interface HeapTrimOptions {
  /** How long after the last garbage collection the plugin counts as quiet. */
  readonly quietMs: number;
  /** Trim only when the heap's resident size grew by at least this much since the last trim. */
  readonly minGrowthBytes: number;
  readonly log: Logger;
}

export const HEAP_TRIM_DEFAULTS = { quietMs: 1000, minGrowthBytes: 1 << 20 } as const;

export interface HeapTrimmer {
  /** Trims done so far (for tests and diagnostics). */
  readonly trims: number;
  stop(): void;
}

/** `flushBytecode`: drop the bytecode of functions not running (V8 recompiles one when it is next called; V8 12 and later). */
type Collect = (options?: { readonly flushBytecode?: boolean }) => void;
/** V8's `gc` as V8 12 defines it (V8 11 is called without options). */
type V8Gc = (options?: { type: "major" | "minor"; execution: "sync" | "async"; flavor?: "regular" | "last-resort" }) => void;

/** A full, memory-reducing collection for this V8, or undefined where none can be had. */
export function memoryReducingCollection(): Collect | undefined {
  let gc: unknown;
  try {
    setFlagsFromString("--expose-gc");
    gc = runInNewContext("gc");
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
  if (typeof gc !== "function") return undefined;
  const v8Gc = gc as V8Gc;
  const v8Major = Number.parseInt(process.versions.v8, 10);
  if (v8Major >= 12) {
    const lastResort = (options?: { readonly flushBytecode?: boolean }) => {
      if (options?.flushBytecode) setFlagsFromString("--stress-flush-code");
      try {
        v8Gc({ type: "major", execution: "sync", flavor: "last-resort" });
      } finally {
        if (options?.flushBytecode) setFlagsFromString("--no-stress-flush-code");
      }
    };
    return lastResort;
  }
  const compactOldSpace = () => {
    setFlagsFromString("--optimize-for-size");
    try {
      // One collection compacts only the pages V8 picks as the most fragmented; the second
      // finishes the job (after 20,000 Probes the heap kept 12.6-19.9 MiB after one, 10.9 after two).
      v8Gc();
      v8Gc();
    } finally {
      setFlagsFromString("--no-optimize-for-size");
    }
  };
  return compactOldSpace;
}

/** While busy, how often the event loop's utilization is sampled: this many times per quiet time. */
const SAMPLES_PER_QUIET_TIME = 4;
/**
 * A sample in which the event loop was busy for at most this share of the
 * time counts as quiet: a node plugin answering kubelet's Probes every few
 * seconds is quiet, one serving a burst of calls is busy nearly all the time.
 */
const QUIET_UTILIZATION = 0.02;

export function startHeapTrimmer(options: HeapTrimOptions): HeapTrimmer {
  const collect = memoryReducingCollection();
  let trims = 0;
  if (collect === undefined) {
    options.log.warn("heap trimming is not available on this Node: V8's gc could not be reached");
    return { trims, stop() {} };
  }
  /** The heap's resident size after the last trim (0 at first: trim once after start-up). */
  let trimmedSize = 0;
  /** The trim's own collection, whose entries the observer must not count as activity. */
  let ownFrom = Number.POSITIVE_INFINITY;
  let ownTo = Number.NEGATIVE_INFINITY;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** The event loop's utilization at the last sample, and how long the loop has been quiet since. */
  let sampled = performance.eventLoopUtilization();
  let quietForMs = 0;
  const sampleEveryMs = options.quietMs / SAMPLES_PER_QUIET_TIME;

  const trimIfGrown = () => {
    const before = getHeapStatistics().total_physical_size;
    if (before - trimmedSize < options.minGrowthBytes) return;
    const after = trimmedSize === 0 ? "start-up" : "calls";
    // Start-up's code never runs again; a burst's does (dropping it would make every burst compile it again).
    const flushBytecode = after === "start-up";
    const bytecodeBefore = flushBytecode ? getHeapCodeStatistics().bytecode_and_metadata_size : 0;
    const rssBefore = process.memoryUsage.rss();
    ownFrom = performance.now();
    collect({ flushBytecode });
    const malloc = mallocTrimmer();
    const mallocReleased = "trim" in malloc ? malloc.trim() : undefined;
    ownTo = performance.now();
    trimmedSize = getHeapStatistics().total_physical_size;
    trims++;
    if ("unavailable" in malloc && trims === 1) options.log.debug({ reason: malloc.unavailable }, "glibc's free heap is not trimmed");
    options.log.debug(
      {
        after,
        heapBeforeMiB: mib(before),
        heapAfterMiB: mib(trimmedSize),
        ...(mallocReleased !== undefined ? { mallocReleased } : {}),
        rssBeforeMiB: mib(rssBefore),
        rssAfterMiB: mib(process.memoryUsage.rss()),
        ...(flushBytecode
          ? { bytecodeBeforeKiB: kib(bytecodeBefore), bytecodeAfterKiB: kib(getHeapCodeStatistics().bytecode_and_metadata_size) }
          : {}),
        ms: Math.round(ownTo - ownFrom),
      },
      "heap trimmed after a quiet time",
    );
  };

  // Idle: no timer; the next garbage collection says the plugin is busy again.
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.startTime >= ownFrom && entry.startTime <= ownTo) continue;
      busy();
      return;
    }
  });
  const watch = () => {
    if (!stopped) observer.observe({ entryTypes: ["gc"] });
  };
  // Busy: the observer is off (it costs on every collection, hundreds a second under load), and the
  // event loop's utilization is sampled until it has been quiet for `quietMs`.
  const busy = () => {
    observer.disconnect();
    sampled = performance.eventLoopUtilization();
    quietForMs = 0;
    if (timer === undefined && !stopped) arm();
  };
  const arm = () => {
    timer = setTimeout(sample, sampleEveryMs);
    timer.unref();
  };
  const sample = () => {
    timer = undefined;
    const now = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(now, sampled);
    sampled = now;
    quietForMs = since.utilization <= QUIET_UTILIZATION ? quietForMs + since.idle + since.active : 0;
    if (quietForMs < options.quietMs) {
      arm();
      return;
    }
    trimIfGrown();
    watch();
  };
  // Start-up was busy.
  busy();
  return {
    get trims() {
      return trims;
    },
    stop() {
      stopped = true;
      observer.disconnect();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
}

function mib(bytes: number): number {
  return Math.round((bytes / 2 ** 20) * 10) / 10;
}

function kib(bytes: number): number {
  return Math.round(bytes / 1024);
}
