/**
 * The "Against the runtime's floor" section of bench/RESULTS.md (issue 13):
 * per Node version, each figure of the driver against its target computed
 * from the baseline server measured in the same run, and the V8-flags lever's
 * before/after. A `--only floor` run rewrites just this section.
 */
import { existsSync, readFileSync } from "node:fs";
import { mib } from "./lib/proc.js";
import { summarize } from "./lib/stats.js";
import {
  FLOOR_CONCURRENCY,
  FORMER_FLAGS_SUBJECT,
  FORMER_HEAP_FLAGS,
  NO_FLAGS_SUBJECT,
  NO_SNAPSHOT_SUBJECT,
  FLOOR_FIRST_CALLS,
  FLOOR_TARGETS,
  FLOOR_TOTAL_CALLS,
  type FloorLoad,
  type FloorMeasure,
  type FloorRuntimeResult,
} from "./scenarios/floor.js";
import type { RssSample } from "./lib/proc.js";

/**
 * Committed runs that hold a lever's "before": the last run of this section
 * before the lever landed (a server or a start-up path cannot be swapped
 * within one run, so its before/after spans two runs on the same machine).
 */
export const EARLIER_RUNS = {
  /** The last run on the grpc-js server. */
  grpcJs: "bench/results/2026-12-05T00-55-13-073Z.json",
  /** Before the plugin kept Node's code cache for its built-in modules valid (src/cli/v8-flags.ts, src/cli/startup-builtins.ts). */
  builtinCache: "bench/results/2026-12-05T09-16-39-130Z.json",
  /** Before an idle plugin stopped running V8's optimizing compiler (src/cli/bin.ts, src/util/executables.ts) and the trim after start-up (src/cli/heap-trim.ts). */
  idleLevers: "bench/results/2026-12-05T11-37-48-016Z.json",
  /** Before the driver wrote its own log lines instead of loading pino (src/log/). */
  logger: "bench/results/2026-12-05T13-32-47-298Z.json",
  /** Before the per-call work was cut (src/csi/arriving-requests.ts, call-handler.ts, heap-trim.ts). */
  perCall: "bench/results/2026-12-05T20-41-45-810Z.json",
  /** The start-up snapshot with V8's concurrent optimizing compiler (before the image's entrypoint set --no-concurrent-recompilation). */
  concurrentCompiler: "bench/results/2026-12-06T00-22-09-282Z.json",
  /** Before the heap trimmer had glibc give back its free pages (src/cli/malloc-trim.ts, src/native/malloc-trim.c). */
  glibcTrim: "bench/results/2026-12-06T01-00-47-749Z.json",
} as const;

export type EarlierFloors = Partial<Record<keyof typeof EARLIER_RUNS, readonly FloorRuntimeResult[]>>;

/** The earlier runs' floor figures, from the committed results files. */
export function committedEarlierFloors(): EarlierFloors {
  const out: EarlierFloors = {};
  for (const [key, path] of Object.entries(EARLIER_RUNS) as [keyof typeof EARLIER_RUNS, string][]) {
    const floor = floorOfRun(path);
    if (floor) out[key] = floor;
  }
  return out;
}

/** The floor figures of a committed results file, if it has them. */
export function floorOfRun(path: string): readonly FloorRuntimeResult[] | undefined {
  if (!existsSync(path)) return undefined;
  const parsed = JSON.parse(readFileSync(path, "utf8")) as { floor?: FloorRuntimeResult[] };
  return parsed.floor;
}

/**
 * Levers weighed by hand, not measured by this section's run: what each bought
 * when it was tried, and why it is or is not in the driver.
 */
/** Why the image sets no V8 flags, and what the plugin does instead (the lever line above has this run's figures). */
const NO_V8_FLAGS_NOTE =
  "No V8 flags in the image (2026-12-05; `Dockerfile`, `src/cli/v8-flags.ts`, `src/cli/heap-trim.ts`): under any V8 flag away from its default, Node compiles the 45 modules of its own loader from source before the program's first line. " +
  "A two-line ES module reached its first line in 33.4 ms on Node 22 without flags and 46.8–50.7 ms with either or both of the image's heap flags (median of 15 interleaved runs each); Node 20 91.8 against 104.0 ms. " +
  "The plugin cannot undo that, so the image dropped its `NODE_OPTIONS` (and the manifests their controllers' `--max-semi-space-size=2`), and the plugin bounds its heap from inside: " +
  "the young generation stops growing once the built-ins are loaded (`--semi-space-growth-factor=1`, kept), so it stays within 2 MiB (both semi spaces; V8 alone grows it to 32); " +
  "the old generation grows by at most 30% over its live size between full collections once the plugin serves (`--heap-growing-percent=30`; without it the old space reached 31–34 MiB under 20,000 Probes and the RSS after load was 62.5–63.1 MiB on Node 20 against 59.3–60.2 with it and 58.4–59.1 with the former cap; Node 22 68.0–69.9 against 66.0–66.8), " +
  "and the heap trim runs on both Nodes after start-up and after each burst (on Node 20 with two collections). `test/cli/heap-bounds.test.ts` fails if the young generation grows past twice its starting size or the old space past 24 MiB under 20,000 Probes (about 16 MiB with the flag, 32–34 without). " +
  "By hand, interleaved, spawn -> first Probe on Node 22: 124.1 -> 113.6 ms (20 starts each; bare server 52.4) and 147.5 -> 130.5 ms (12 each); Node 20 197.8 -> 185.5 ms (12 each). " +
  "What it costs, from the bench's same-run lever line over three runs (`2026-12-05T19-29-49-392Z`, `T19-59-13-985Z` and `T20-41-45-810Z`): CPU per Probe 6–12% higher without the flags on both Nodes (Node 22 73 -> 77, 73 -> 77, 78 -> 83 µs; Node 20 77 -> 80, 79 -> 89, 81 -> 91 µs), and on Node 20 about 0.8 MiB more idle RSS (file pages: Node reads its built-ins' code cache) and 0.6–1.4 MiB more after load; on Node 22 the RSS rows are the same either way. " +
  "The cause of the CPU difference is not found: the young generation is the same 2 MiB either way (sampled), and the collections' main-thread time under 30,000 Probes is the same (Node 20: 449 scavenges and 8 full collections, 265 + 44 ms, without the flags; 451 and 8, 268 + 40 ms, with them). " +
  "Kept for the start-up (the row the flags miss by most); putting the flags back is the lever to weigh against it if CPU per Probe matters more. " +
  "Tried and not kept beside it: `--no-turbo-inlining` once serving (RSS after load unchanged, CPU per Probe 57–58 -> 67–72 µs), `--maglev` or `--always-sparkplug` during start-up (no faster), building the node path's modules into fewer files or loading them with fewer dynamic imports (26 or 27 files either way: esbuild splits by what the entry points and dynamic imports share; start-up unchanged), and the `createRequire` banner left out of the chunks that never call `require` (unchanged). Letting the young generation grow once more once the plugin serves, to 4 MiB (what the image's former `--max-semi-space-size=2` allowed; emulated by switching the growth factor from a garbage-collection observer), by hand, 3 processes each, interleaved: on Node 20 the scavenges under 30,000 Probes halve (450 -> 223, 262 -> 201 ms) and CPU per Probe falls about 7% (58–65 -> 54–59 µs), but the RSS after load grows by 2 MiB (59.3–60.1 -> 61.4–62.2 MiB), which Node 20's V8 never gives back; on Node 22 CPU per Probe did not fall (56–71 against 59–63 µs). A node plugin is idle most of its life and its memory is paid on every node, so the young generation stays at 2 MiB; that is why Node 20's CPU per Probe sits near its target (78–91 µs per process against 73–89 with the former flags in the run above, where the former flags now also mean the 2 MiB young generation).";

const FLOOR_NOTES: readonly string[] = [
  "Fewer allocations per call (`src/csi/call-handler.ts`): the request id, the call's logger and its AbortController are made only when a handler or a log line asks for them, one listener function serves every stream's events, and Probe answers from the readiness cache without asking for a signal. Under 30,000 Probes at c=64 (Node 20, CPU profile), creating AbortSignals alone had been 5% of the plugin's CPU.",
  "Young generation: held at 1 MiB per semi space (the earlier image's `--max-semi-space-size=1` with `--semi-space-growth-factor=1`), the scavenger was about a third of the plugin's CPU under load (34% on Node 20, 38% on Node 22, CPU profiles of 40,000 Probes at c=64): at c=64 each scavenge copies every call in flight. Allowed to grow to 2 MiB once the plugin serves (it is still held at 1 MiB during start-up, whose garbage would otherwise double it before the first call), the scavenger's time fell by a quarter on Node 20 and by half on Node 22; 4 and 8 MiB bought little more (Node 22: 1,298 ms at 1 MiB, 664 at 2, 666 at 4, 555 at 8, with RSS after the load +2, +14 and +17 MiB). The image shipped `--max-semi-space-size=2` until it dropped its V8 flags (see the note on them); the plugin now stops the young generation's growth itself once the built-ins are loaded, by which time it has doubled once, to 2 MiB in all (`test/cli/heap-bounds.test.ts` checks it stays there; V8 alone took it to 32 MiB under 20,000 Probes).",
  "Heap flags tried before choosing (Node 20, RSS 2 s after 20k Probes at c=64, one process each, grpc-js server, 2026-12-05): none 90.5 MiB; `--max-semi-space-size=1` alone 92.3 MiB (the young generation is not where the growth is); `--max-old-space-size=32` 72.3; `=48` with semi space 1: 72.2; `=64` with semi space 1: 72.2; `=24` with semi space 1: 69.9 MiB. A cap of 64 MiB buys as much as the smaller ones and leaves the controller's page-bounded listings room (their live heap stays near 10 MiB). Tried since by hand, no better: `--heap-growing-percent=10` and `--optimize-for-size` (set from the program; the latter costs CPU), glibc's `MALLOC_ARENA_MAX=1/2` and `MALLOC_TRIM_THRESHOLD_` (about 2 MiB less after load, within the run-to-run noise), `--v8-pool-size=1`. Without a cap (the image's flags dropped, 2026-12-05), `--heap-growing-percent=30` set from the program does the cap's work (see the note on V8 flags); 10 measured the same as 30 on both Nodes.",
  "Loading less at start: a node-mode start loads the gRPC server (a 50 KB chunk; grpc-js was about 640 KB), the protobuf runtime with csi.proto's descriptors (about 27 ms: half of it builds descriptor.proto's, which csi.proto imports for its field options such as csi_secret; protobuf-es builds a file's descriptors at once, so a mode cannot load only its own services'). The logger is now the driver's own (`src/log/`, about 1 ms to load); pino with sonic-boom, thread-stream and node:worker_threads had been about 10 ms of a node plugin's start and 0.5 MiB of its idle heap (by hand, Node 22, 8 interleaved starts with the image's NODE_OPTIONS: spawn -> first Probe 149 -> 134 ms, idle RSS 57.3 -> 56.9 MiB; the lever line above has this run's figures); `--log-format pretty` still renders through pino-pretty, loaded only then. The debug server's module, and with it node:http, is now loaded only with `--debug-addr` (about 30 ms of a start on Node 22). Minifying the bundle (1.8 MB to 980 KB) changed neither start-up nor idle RSS measurably; not adopted (stack traces keep their names). Tried again with whitespace and syntax only (names kept; node mode's chunks 3.7 -> 3.2 MB on disk with their maps): idle RSS 57.3 -> 57.0 MiB on Node 22 and unchanged on Node 20, start-up within the noise; not adopted. Still loaded at start and not needed until a call is logged: protobuf's JSON code with any.proto's and struct.proto's descriptors, which the redacted request log pulls in (about 3 ms and 0.16 MiB of heap on Node 22, measured by importing the chunk); loading the renderer only for a debug log was tried (2026-12-05) and bought nothing: esbuild puts a file in a chunk by which entry points reach it, and protobuf-es's index file, which every module that uses protobuf imports, reaches the JSON code, so it stays in the chunk with toBinary that the server loads.",
  "Compile cache (`NODE_COMPILE_CACHE`, Node 22), tried by hand with a warm cache on the grpc-js build (spawn -> first Probe 184–268 ms without, 168–264 ms with) and again on the next build (no difference beyond the noise). Tried once more with the built-ins taken from Node's cache (next note), where compiling the bundle's own modules is a larger share of the start: 151 -> 135 ms (median of 8 interleaved starts, warm cache). Still not adopted: Node 20 has no such cache, and a container starts from a fresh layer, so the image would have to warm the cache when it is built by starting a plugin under the image's exact flags (a module compiled under other flags is rejected), a step no test here can run without a Docker engine. Measured again once the image set no V8 flags (Node 22, 2026-12-05, `NODE_COMPILE_CACHE` warm, 14–16 interleaved starts, twice): 140.7 -> 118.2 and 116.3 -> 111.7 ms, against a bare server at 51 ms; not adopted for the same reasons, and the start-up row would still miss on Node 20.",
  "No optimizing compiler in an idle plugin (`src/cli/bin.ts`, `src/util/executables.ts`). The Node 22 rows used to carry about 5 MiB more of the node binary's code when the bundle was started from some directories than from others (the bench's own copy, `bench/.run-<pid>/dist`, among them; the repository's `dist/` not). Reading which pages of the binary were resident (`/proc/<pid>/pagemap`) against its symbols showed the extra ones are TurboFan's and Turboshaft's code, and `--trace-opt` (through `stdbuf -o0`: V8 prints through C's stdout, which a pipe buffers past the process's end) named the cause: TurboFan compiled one function, node:path's `normalizeString` or `isPosixPathSeparator` (Node 22) or node:url's `getPathFromURLPosix` (Node 20). Module loading at start-up calls them for every module, a number of loop iterations that grows with the directory's length, and from some lengths that crossed V8's optimization budget: before TurboFan was held back (the program's own modules loaded before `--no-turbofan` was set), or at the first Probe, whose readiness check joined every host tool with every PATH directory through node:path. One optimized function maps the compiler's code, 3–5 MiB of RSS, into a plugin that then serves a Probe every few seconds. Now the plugin holds TurboFan back before its own modules load (right after the start-up built-ins, node:perf_hooks and node:vm now among them) and finds executables without node:path's join. By hand, Node 22, the bundle copied into directories of 1 to 20 characters: the binary's resident code 19.6–25.2 MiB before, 19.6–19.7 MiB after, whatever the directory. `test/cli/idle-optimizer.test.ts` starts the built bundle from six directories of different lengths on both Nodes with the image's NODE_OPTIONS and fails on anything V8 marks for TurboFan after start-up and three Probes (it failed without either change), and checks under 5,000 Probes that the trace does report TurboFan.",
  "Heap trimming (`src/cli/heap-trim.ts`): after a burst of calls V8 keeps the pages it grew the heap by until its memory reducer runs (8 s or more after the burst; on Node 20 the young generation stays at its largest), so the plugin held its peak heap between bursts. Now, once no garbage collection has run for 1 s (since the per-call note below: once the event loop has been at most 2% busy for 1 s) and the heap grew by 1 MiB or more since the last trim, the plugin runs one memory-reducing full collection (Node 22: V8's last-resort `gc` flavor, which also shrinks the young generation; Node 20's V8 has no flavors: a full collection under `--optimize-for-size`, which compacts the old space). By hand, 2 s after 30,000 Probes at c=64 (same machine, one process each, interleaved): Node 22 80.3, 80.4 -> 67.1, 67.2 MiB, Node 20 70.1, 70.6 -> 62.3, 63.6 MiB, CPU per Probe within the noise (Node 22 86, 103 -> 90, 86 µs). In this run against the last one before it (`bench/results/2026-12-05T06-28-28-674Z.json`), the driver as the image runs it: Node 22 after 20k 80.4 -> 67.4 MiB, after 100k 80.4 -> 67.7 MiB; Node 20 71.1 -> 62.2 and 70.5 -> 67.9 MiB (the collection Node 20's V8 offers compacts the old space but leaves the young generation as large as the load made it, so it returns less). Each trim costs one collection on Node 22 (20–45 ms) and two on Node 20 (25–35 ms: one compacted only the pages V8 picked, leaving 12.6–19.9 MiB of heap after 20,000 Probes; two leave 10.9), once per burst and never while calls keep coming (a collection restarted the quiet time; now a busy event loop does); the CPU per Probe rows do not include it (it runs after the load). Once after start-up too, on Node 22 only (2026-12-05, by hand, median of 3 starts with the image's NODE_OPTIONS): idle RSS 59.4 -> 57.1 MiB, the first burst of 20,000 Probes after it 84 -> 88 µs of CPU per Probe while the young generation grows back, the later ones and the RSS after load unchanged. (Since the image dropped its V8 flags the young generation no longer grows back after it on Node 22: it stays at 1 MiB, see the note on a 4 MiB young generation.) An earlier try had measured the first burst a fifth dearer (105–110 against 86–89 µs) and was dropped; on the current server the cost is the 5% above, paid once. That start-up trim now also drops the bytecode of every function not running (`--stress-flush-code` for the one collection): start-up's code (building the protobuf descriptors, module bodies, the command line) never runs again, and V8 compiles anything that does run again on its next call. Bytecode and its metadata about 600 -> 100 KiB; idle RSS 56.4 -> 56.0 MiB (Node 22, by hand, median of 3, interleaved), the first burst's CPU per Probe within the noise (88–99 against 94–96 µs). Dropping a burst's bytecode after it is not done: the next burst would compile it again. On Node 20 one collection left the idle RSS as it was (52.1 -> 52.3 MiB; with the flush, and its forced collection flushes no bytecode, 52.0 MiB), so it was not run there; with two collections it gives back 1.2 MiB (52.8 -> 51.6 MiB, 6 interleaved starts each, 2026-12-05) and runs on both Nodes; `test/cli/heap-trim.test.ts` expects one trim after start-up on each Node, with the bytecode halved on Node 22. Not available to the plugin: V8's own `--gc-memory-reducer-start-delay-ms` (NODE_OPTIONS refuses it; set from the program it has no effect, V8 reads it once), glibc's `MALLOC_ARENA_MAX=1/2`, `MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_` with the trim (no change: 18.2–18.9 MiB anonymous either way).",
  "Node's code cache for its built-in modules (`src/cli/v8-flags.ts`, `src/cli/startup-builtins.ts`): Node ships its built-ins (node:http2, node:net, ...) with a V8 code cache made under V8's default flags, and V8 rejects a cache whose flags hash differs from the ones in force. Any flag away from its default does that: the image's heap sizes in NODE_OPTIONS, and the start-up's own `--no-turbofan`. Node then compiled every built-in a start loads (about 80) from source: node:http2 took 23–35 ms instead of 9–12 on both Nodes (`import(\"node:http2\")` timed by hand with and without `--max-old-space-size=64`, or `--max-lazy`, any flag will do). Now the plugin first sets the heap's size flags back to their defaults (V8 read them when it set the heap up; the limit stays: a 64 MiB cap still stops allocation at 64 MiB, which the test checks), loads the built-ins its start needs while the flags hash as Node's cache expects, and only then holds TurboFan back for the start. Interleaved by hand, 8 starts each, before -> after: Node 22 spawn -> first Probe 179 -> 153 ms and idle RSS 66.3 -> 60.4 MiB (the built-ins compiled from source also held more memory); Node 20 217 -> 204 ms, idle RSS unchanged. `test/cli/startup-builtins.test.ts` reads Node's own record of which built-ins it compiled with and without the cache and fails on any a node plugin compiles from source beyond the two its first chunk loads before it can reset the flags (node:module, node:v8). What the flags still cost: the built-ins Node loads for itself before the program's first line (its module loader) compile from source, so the driver with the image's NODE_OPTIONS started 10–30 ms later than without them; the image now sets none (next note).",
  NO_V8_FLAGS_NOTE,
  "Less work per call (2026-12-05; `src/csi/arriving-requests.ts`, `src/csi/call-handler.ts`, `src/driver/identity.ts`, `src/cli/heap-trim.ts`). CPU profiles of 30,000 Probes at c=64 on Node 22 against the bare server's: the driver's busy time was 3.2 s against 1.7 s, " +
    "of which garbage collection 1.09 s against 0.34 s (478 scavenges against 39: the young generation is held at 2 MiB, the bare server's grows to 32), the driver's own code 0.56 s more, and Node's 0.2 s more. " +
    "An allocation profile put the driver's own share at about 3.3 KB per call over the bare server's 9.6 KB. Cut: the request-arrival bound's `setTimeout`/`clearTimeout` per call (one timer now serves every request still arriving, due when the oldest's time is up); " +
    "the async function and promises per unary call when the handler answers at once (Probe while readiness is fresh, GetPluginInfo, the Get*Capabilities calls); the BinaryReader for empty requests (zero bytes decode to `create(input)`); " +
    "and the heap trimmer's PerformanceObserver for `gc` entries while busy (Node builds an entry and schedules a callback for each of hundreds of scavenges a second; the trimmer now samples the event loop's utilization 4 times per quiet time instead, and trims once it was at most 2% busy for 1 s). " +
    "By hand, Node 22, 20,000 Probes, driver pinned to one core, 6 interleaved rounds: CPU per Probe against the previous build, median ratio 0.93 (0.84–1.03). In this run against the last (lever line above) both CPU rows pass. " +
    "What it costs, found after this run: on Node 22 the RSS 2 s after a burst is often about 4 MiB higher (by hand, 20,000 Probes after 2 s idle: the previous build 66.4–68.3 MiB in 9 processes, this one 71.0–72.2 in most and 66.5–67.2 in some). " +
    "The V8 heap after the trim is the same (about 9.5 MiB); the difference is glibc's: its main heap +3.1 MiB and its thread arenas +2.3 MiB (`/proc/<pid>/smaps`, one process each). Taking out any one of the four changes did not bring it back. " +
    "It follows the garbage collector's pace, not any one change: the same build allocating about 4 KB of garbage more per call (an array made in the request's end handler, by hand) was back at 66.4–67.1 MiB and at the former CPU per Probe; " +
    "with `--optimize-for-size` set once serving (V8 then lets the old generation grow by 2 MiB between full collections instead of 8) 66.6–66.8 MiB in every process, but CPU per Probe about 25% higher, so not kept. " +
    "So what the garbage holds outside V8's heap (native memory freed only when its JavaScript handle is collected) piles up longer between collections when a call allocates less, and glibc keeps the pages it grew to. Which handles hold it is not found yet. " +
    "`MALLOC_MMAP_THRESHOLD_=65536`, `MALLOC_TRIM_THRESHOLD_=0` and `MALLOC_ARENA_MAX=1`, one or two processes each, were within that spread. Node 20's rows after load are unchanged (60.2 -> 60.0 MiB).",
  "Optimizing compiler after start-up, weighed against the RSS after load (Node 22, by hand, 2026-12-05, RSS 2 s after 20,000 and 60,000 Probes at c=64, CPU per Probe over the 40,000 after the first 20,000, two or three processes each, interleaved): as shipped 66.3–66.9 MiB after load and 58–66 µs per Probe. Without TurboFan once the plugin serves (the interpreter and Sparkplug only): 58.2–58.4 MiB (the compiler's code in the node binary is never paged in, and it keeps no optimized code), but 176–192 µs per Probe, about three times the CPU and over twice the baseline's, so not adopted; Maglev turned on instead (Node 22's build has it off by default; `--maglev` on the command line or set once serving) ran no faster than that. With `--no-concurrent-recompilation` (TurboFan compiling on the main thread, so its memory is not left in a worker thread's malloc arena): 64.6–65.0 MiB and 61–65 µs on Node 22, within the noise on Node 20 (59.4–66.3 against 60.5–66.4 MiB). It would have to be on node's command line (NODE_OPTIONS refuses it), so the image's entrypoint and every other way of starting the bundle would carry it, for about 1.8 MiB that leaves the row still over its target; not adopted. Maglev instead (V8's mid-tier compiler, off by default in Node 22; tried 2026-12-06 from the snapshot with `--maglev` and TurboFan left off once serving, two processes each, 20,000 Probes): 56.8–56.9 against 69.5–69.6 MiB after load, which would pass that row, but 142–145 against 73–78 µs per Probe, which would miss the CPU row; not adopted.",
  "Start-up snapshot (2026-12-06; `src/cli/snapshot.ts`, `src/cli/build-snapshot.ts`, `Dockerfile`; the lever line above has this run's figures). The image builds, with its own Node, a V8 start-up snapshot of what a node plugin's start loads and builds: csi.proto's protobuf descriptors (and descriptor.proto's, which they need), the gRPC server, the plugin, the node service and both backends' node halves; every plugin starts from it (`node --snapshot-blob FILE -- ARGS`). " +
    "What had kept it out when it was first tried (by hand, 2026-12-05: about 18 ms for the descriptors and pino alone): node:http2 cannot be in a snapshot (its binding's buffers cannot be serialized; the build aborts), so the server now loads it once its socket listens, and the server's modules can be in; Node does not vouch for node:child_process or node:module in a snapshot (the build warns), so `spawn` is loaded at its first call (`process.getBuiltinModule`, hence Node >= 20.16); the crash points read the environment when a call reaches them, not when their module loads, and the log's retry pause makes its SharedArrayBuffer at the first retry (the builder has none); the logger takes the pid when it is made, after start. `test/cli/snapshot.test.ts` checks on both Nodes that the command line, the environment, the pid and the crash points are the running process's and that it spawns its tools, and the conformance suite runs against the image's Node started this way. " +
    "Weighed by hand first (Node 22 / Node 20, 8 interleaved starts each, spawn -> first Probe, idle RSS): from the bundle 150 / 242 ms, 56.0 / 51.5 MiB; from a snapshot with Node's code cache for its built-ins (the default) 97 / 170 ms but 58.4 / 52.2 MiB: Node holds the whole snapshot in memory (8.0 / 6.3 MB, 3.6 MB of it that code cache), where a start from the bundle pages in only the parts of the binary's cache it uses. Built without it (`withoutCodeCache`): 120 / 209 ms and 55.0 / 49.6 MiB, kept; the built-ins a start loads (node:http2 with node:tls and node:http, node:net's cluster, node:perf_hooks) then compile from source, about 20 ms of it. A snapshot of the descriptors alone: 129 ms on Node 22, against 110 with the node path's modules in it too. Loading node:http2 after the socket listens has the socket there about 25 ms sooner, the first Probe answered about 5 ms sooner. " +
    "The builder's bundle has no comments or indentation (esbuild's minifyWhitespace): V8 keeps a source with any character beyond ASCII (one comment had a section sign) at two bytes per character, 1.9 MB instead of 0.7 in every process; the build fails if such a character comes back. " +
    "What it cost at first (run `2026-12-06T00-22-09-282Z`): RSS after load 2.5–3 MiB higher than from the bundle on both Nodes. The resident file pages stay about 5 MiB lower (Node's own snapshot and code cache in the binary are not read); the anonymous memory was the snapshot (3.6 MB) plus 2.5–4 MiB more in glibc's thread arenas after load (`/proc/<pid>/smaps`: four arenas fully resident, 1.4–2.9 MiB each, where the bundle's had given most of their pages back), with and without the code cache in the snapshot. " +
    "They are the optimizing compiler's: with TurboFan compiling on the main thread (`--no-concurrent-recompilation`) they stay at their idle size. By hand, 20,000 Probes, RSS 2 s after, three processes each: Node 22 69.3–69.5 MiB against 69.2–75.7, Node 20 62.8–64.4 against 67.3–69.0, CPU per Probe no higher (Node 22 63–72 against 76–85 µs). V8 sets its compile dispatcher up when the isolate starts, so the flag set from inside (`v8.setFlagsFromString`, tried) changes nothing: it is on the image's ENTRYPOINT, where it costs nothing (on the bundle's command line it would cost the built-ins' code cache; the snapshot holds none). Why the snapshot's start leaves the arenas fuller than the bundle's is not found. The image goes back to the bundle with `ENTRYPOINT [\"do-csi-plugin\"]`.",
  "glibc's heap (2026-12-06; `src/cli/malloc-trim.ts`, `src/native/malloc-trim.c`; the lever line above has this run's figures). What the trim left after load was mostly not V8's. heaptrack (Node 22, from the snapshot, 20,000 Probes) put the peak of malloc'd memory at 13.5 MB against 8.0 at idle, and what was still allocated after the load at only 1.1 MB more than at idle: V8's table of external strings (Node's HTTP/2 makes each request header one), grown under load and never shrunk. " +
    "glibc's `malloc_stats` showed its main arena holding 9.8 MB from the system with 3.6 MB in use: glibc gives memory back by itself only from the top of its heap, and the burst's frees lay below blocks still in use. `malloc_trim(0)` hands every whole free page back; Node has no binding to it, so the build compiles a Node-API addon of one function (one build loads on Node 20 and 22) where a C compiler and glibc are present, and the heap trimmer calls it after V8's collection (`mallocReleased` in its debug log; under 1 ms). " +
    "By hand (from the snapshot, 20,000 Probes, RSS 2 s after, three processes each): Node 22 64.3–67.6 -> 62.9–63.0 MiB, Node 20 58.3 -> 56.6–56.7 MiB, idle 0.5 MiB lower on both from the trim after start-up. glibc's tunables instead (`glibc.malloc.mmap_threshold` 4096, 16384 or 32768, two processes each) left the main heap at 3.6–7.6 MiB after load, as spread as without them. " +
    "With the trim, one tunable does help: a block in glibc's per-thread cache of freed blocks (tcache, up to 7 per size) is not free to glibc, so `malloc_trim` can give back neither it nor the free memory around it. The image sets `GLIBC_TUNABLES=glibc.malloc.tcache_count=0` (the Dockerfile's ENV; the bench runs the driver in it, the baseline not): by hand, 20,000 Probes, glibc's main heap after the trim 4.5 -> 3.7–3.8 MiB and RSS 56.6–56.7 -> 55.8–56.0 MiB on Node 20 (three processes each, 50,000 Probes), 4.3 -> 3.7 MiB and 62.8 -> 62.2–62.3 MiB on Node 22; CPU per Probe within the noise (85–110 against 93–102 µs on a busy machine). `glibc.malloc.arena_max=1` (4.5 -> 5.0 MiB) and `glibc.malloc.mmap_threshold=131072` (RSS unchanged) did not. " +
    "What stays after load on Node 22 (`/proc/<pid>/smaps` against idle): the optimizing compiler's code in the node binary +5.4 MiB, glibc's heap +2.0 MiB (the external-string table among it), V8's heap +1.0 MiB. The snapshot itself (3.6 MB) stays in malloc'd memory for the process's life: Node keeps it to make new contexts from.",
  "Where the rest is. Start-up, timed inside the program (6 starts, marks after each step; Node 22 / Node 20): to `main()` 42 / 98 ms (Node's own start, 23–28 / about 74 ms for an empty script, plus what NODE_OPTIONS costs it: under any non-default V8 flag the 45 of Node's own modules its ES module loader needs before the program's first line compile from source, a trivial two-module program 33.5 -> 41.1 ms on Node 22 and 83.9 -> 93.0 ms on Node 20, median of 15 interleaved runs; and node:v8 and the command line's modules), the built-ins from Node's cache 14 / 12 ms (node:http2 about 10 of them, which the bare server loads too), the logger (then pino, since replaced) 10 / 10 ms, the protobuf runtime with descriptor.proto's descriptors 20 / 22 ms and csi.proto's 13 / 14 ms (by hand, Node 22: compiling the chunk 5 ms, building descriptor.proto 9 ms, timestamp.proto 3 ms, csi.proto 8.5 ms; no V8 flag tried made them faster: `--always-sparkplug`, `--no-lazy-feedback-allocation`, `--max-lazy`, `--no-flush-bytecode`), the gRPC server 4 / 5 ms, the node service and the local backend 7 / 8 ms, building the plugin 3 ms, listening 3 ms. The bare server pays Node's start and node:http2; the rest is the driver's. Idle RSS (Node 22, by hand): the plugin's V8 heap is 11.6 MiB resident against the bare server's 7.3, its old space holding 6.3 MiB live after a full collection against 3.5 (importing the protobuf runtime with the csi.proto descriptors keeps 1.7 MiB live, pino 0.5, the gRPC server 0.5), and its anonymous memory is 16.6 against 11.0 MiB. The plugin no longer runs V8's optimizing compiler while idle (see the note on it); before, from some directories it did, which is what made the node binary's resident code depend on where the bundle was started from. After load, with the trim: the optimizing compiler's code pages in the node binary (about 4 MiB, which the bare server pays too once it is loaded) and about 4 MiB of malloc'd memory that Node's HTTP/2 and V8's threads freed but glibc kept (the main heap grew 2.9 -> 5.2 MiB and the thread arenas by 1.5 MiB; the bare server keeps 8 MiB more after the same load), which the trim now has glibc give back (see the note on glibc's heap). The live heap after a full collection stays near 7 MiB. The resident file pages also vary between runs by up to 5 MiB for the same process (pages of the node binary that other processes brought into the page cache are mapped with the ones it touches), which moves the idle and loaded rows of every subject.",
];

export const FLOOR_BEGIN = "<!-- floor:begin -->";
export const FLOOR_END = "<!-- floor:end -->";

const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);

function verdict(value: number, target: number): string {
  return value <= target ? "**pass**" : `**miss** (+${f1(value - target)})`;
}

function startMs(m: FloorMeasure): number {
  return summarize(m.readyMs).median;
}

/** Idle RSS: the median over the subject's processes (older runs kept one). */
function idleRss(m: FloorMeasure): number {
  return m.idleSamples && m.idleSamples.length > 0 ? summarize(m.idleSamples.map((s) => s.rss)).median : m.idle.rss;
}

/** The idle sample whose RSS is the median one (for its anonymous / file split). */
function idleMedianSample(m: FloorMeasure): RssSample {
  const samples = m.idleSamples && m.idleSamples.length > 0 ? m.idleSamples : [m.idle];
  const sorted = [...samples].sort((a, b) => a.rss - b.rss);
  return sorted[Math.floor(sorted.length / 2)] ?? m.idle;
}

/** "(anon a / file f)": resident anonymous memory and file pages (mostly the node binary's), which vary with the page cache. */
function split(sample: RssSample): string {
  return `(anon ${f1(mib(sample.anon))} / file ${f1(mib(sample.file))})`;
}

/** Every process's load figures (older runs kept one process's). */
function loads(m: FloorMeasure): readonly FloorLoad[] {
  if (m.loads && m.loads.length > 0) return m.loads;
  const last = m.restRun.segments.at(-1);
  return [
    {
      afterFirst: m.afterFirst,
      afterTotal: m.afterTotal,
      firstCpuUsPerCall: m.firstRun.driverCpuUsPerCall,
      restCpuUsPerCall: m.restRun.driverCpuUsPerCall,
      p50Us: last?.p50Us ?? Number.NaN,
      p99Us: last?.p99Us ?? Number.NaN,
    },
  ];
}

/** The median of one load figure over the subject's processes. */
function loadMedian(m: FloorMeasure, figure: (l: FloorLoad) => number): number {
  return summarize(loads(m).map(figure)).median;
}

/** The RSS sample after load whose RSS is the median one (for its anonymous / file split). */
function loadedSample(m: FloorMeasure, which: "afterFirst" | "afterTotal"): RssSample {
  const sorted = loads(m)
    .map((l) => l[which])
    .sort((a, b) => a.rss - b.rss);
  return sorted[Math.floor(sorted.length / 2)] ?? m[which];
}

/** Steady-state CPU per Probe: the calls after the first FLOOR_FIRST_CALLS (JIT warm by then), median over the processes. */
function cpuPerProbe(m: FloorMeasure): number {
  return loadMedian(m, (l) => l.restCpuUsPerCall);
}

/** The driver and the baseline in an earlier run (a lever's "before") and in this one, on the same Node. */
interface AcrossRuns {
  readonly before: FloorMeasure;
  readonly beforeBase: FloorMeasure;
  readonly after: FloorMeasure;
  readonly base: FloorMeasure;
}

function acrossRuns(
  earlier: readonly FloorRuntimeResult[] | undefined,
  runtime: FloorRuntimeResult["runtime"],
  measures: readonly FloorMeasure[],
): AcrossRuns | undefined {
  const then = earlier?.find((r) => r.runtime.version === runtime.version)?.measures;
  const before = then?.find((m) => m.subject === "driver");
  const beforeBase = then?.find((m) => m.subject === "baseline");
  const after = measures.find((m) => m.subject === "driver");
  const base = measures.find((m) => m.subject === "baseline");
  return before && beforeBase && after && base ? { before, beforeBase, after, base } : undefined;
}

/** One figure across the runs: "before (its baseline) -> after (its baseline)". */
function change(r: AcrossRuns, value: (m: FloorMeasure) => number, format: (n: number) => string): string {
  return `${format(value(r.before))} (${format(value(r.beforeBase))}) -> ${format(value(r.after))} (${format(value(r.base))})`;
}

/** The levers whose before/after spans two runs: what each is, and the figures it is judged by. */
const ACROSS_RUNS_LEVERS: readonly {
  readonly before: keyof typeof EARLIER_RUNS;
  readonly what: string;
  readonly figures: (r: AcrossRuns) => string;
}[] = [
  {
    before: "grpcJs",
    what:
      "gRPC server on Node's own HTTP/2 instead of grpc-js (`src/csi/grpc-stream.ts`, `src/csi/grpc-wire.ts`; every guarantee of docs/transport.md kept, " +
      "and the transport, hostile-input, fuzz, conformance and grpc-go interop tests pass on it)",
    figures: (r) =>
      `CPU per Probe ${change(r, cpuPerProbe, f0)} µs, ${afterLoad(r)}, idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, ` +
      `start-up ${change(r, startMs, f0)} ms. (The "after" includes the other levers below.)`,
  },
  {
    before: "builtinCache",
    what: "Node's code cache for its built-in modules kept valid (`src/cli/v8-flags.ts`, `src/cli/startup-builtins.ts`; see the note below)",
    figures: (r) =>
      `start-up ${change(r, startMs, f0)} ms, idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, ` +
      `of which anonymous ${change(r, (m) => mib(idleMedianSample(m).anon), f1)} MiB, ${afterLoad(r)}, CPU per Probe ${change(r, cpuPerProbe, f0)} µs.`,
  },
  {
    before: "idleLevers",
    what:
      "No optimizing compiler in an idle plugin (`src/cli/bin.ts`, `src/util/executables.ts`) and, on Node 22, " +
      "a heap trim after start-up (`src/cli/heap-trim.ts`; see the notes below)",
    figures: (r) =>
      `idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, of which file pages ${change(r, (m) => mib(idleMedianSample(m).file), f1)} MiB ` +
      `and anonymous ${change(r, (m) => mib(idleMedianSample(m).anon), f1)} MiB, ${afterLoad(r)}, ` +
      `start-up ${change(r, startMs, f0)} ms, CPU per Probe ${change(r, cpuPerProbe, f0)} µs.`,
  },
  {
    before: "logger",
    what:
      "The driver's own JSON log lines instead of pino (`src/log/`: the same lines, level filtering, bindings, BigInt and circular values, " +
      "synchronous writes that survive a slow or closed standard error; pino, sonic-boom, thread-stream and node:worker_threads no longer load)",
    figures: (r) =>
      `start-up ${change(r, startMs, f0)} ms, idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, ` +
      `of which anonymous ${change(r, (m) => mib(idleMedianSample(m).anon), f1)} MiB, ${afterLoad(r)}, CPU per Probe ${change(r, cpuPerProbe, f0)} µs.`,
  },
  {
    before: "perCall",
    what:
      "Less work per call (`src/csi/arriving-requests.ts`, `src/csi/call-handler.ts`, `src/cli/heap-trim.ts`; see the note below): one timer for every request still arriving, " +
      "unary answers in the same turn when the handler has them, empty requests without a reader, and no GC observer while the plugin is busy",
    figures: (r) =>
      `CPU per Probe ${change(r, cpuPerProbe, f0)} µs, RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes ${change(r, (m) => mib(loadedSample(m, "afterFirst").rss), f1)} MiB, ` +
      `${afterLoad(r)}, idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, start-up ${change(r, startMs, f0)} ms.`,
  },
  {
    before: "concurrentCompiler",
    what: "TurboFan on the main thread for the plugin started from its snapshot (the image's ENTRYPOINT: `--no-concurrent-recompilation`; see the snapshot's note below)",
    figures: (r) =>
      `RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes ${change(r, (m) => mib(loadedSample(m, "afterFirst").rss), f1)} MiB, ` +
      `of which anonymous ${change(r, (m) => mib(loadedSample(m, "afterFirst").anon), f1)} MiB, ${afterLoad(r)}, CPU per Probe ${change(r, cpuPerProbe, f0)} µs, ` +
      `idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, start-up ${change(r, startMs, f0)} ms.`,
  },
  {
    before: "glibcTrim",
    what:
      "glibc's free pages given back with every heap trim (`src/cli/malloc-trim.ts`, `src/native/malloc-trim.c`: `malloc_trim` through a Node-API addon the build compiles), " +
      "and the image's `GLIBC_TUNABLES=glibc.malloc.tcache_count=0` (see the note below)",
    figures: (r) =>
      `RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes ${change(r, (m) => mib(loadedSample(m, "afterFirst").rss), f1)} MiB, ` +
      `of which anonymous ${change(r, (m) => mib(loadedSample(m, "afterFirst").anon), f1)} MiB, ${afterLoad(r)}, ` +
      `idle ${change(r, (m) => mib(idleRss(m)), f1)} MiB, CPU per Probe ${change(r, cpuPerProbe, f0)} µs, start-up ${change(r, startMs, f0)} ms.`,
  },
];

/** Every row of one subject against another's, measured in the same run. */
function beforeAfter(before: FloorMeasure, after: FloorMeasure): string {
  return (
    `RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes ${f1(mib(loadedSample(before, "afterFirst").rss))} -> ${f1(mib(loadedSample(after, "afterFirst").rss))} MiB, after ${FLOOR_TOTAL_CALLS / 1000}k ${f1(mib(loadedSample(before, "afterTotal").rss))} -> ${f1(mib(loadedSample(after, "afterTotal").rss))} MiB, ` +
    `idle ${f1(mib(idleRss(before)))} -> ${f1(mib(idleRss(after)))} MiB, CPU per Probe ${f0(cpuPerProbe(before))} -> ${f0(cpuPerProbe(after))} µs, start-up ${f0(startMs(before))} -> ${f0(startMs(after))} ms.`
  );
}

/** "RSS after 100k Probes before -> after MiB". */
function afterLoad(r: AcrossRuns): string {
  return `RSS after ${FLOOR_TOTAL_CALLS / 1000}k Probes ${f1(mib(loadedSample(r.before, "afterTotal").rss))} -> ${f1(mib(loadedSample(r.after, "afterTotal").rss))} MiB`;
}

/** How the driver subjects were started in `results` (the runs' lever changed over time). */
function driverStartNote(results: readonly FloorRuntimeResult[]): string {
  const has = (subject: string) => results.some((r) => r.measures.some((m) => m.subject === subject));
  if (has(NO_SNAPSHOT_SUBJECT)) {
    const driver = results.flatMap((r) => r.measures).find((m) => m.subject === "driver");
    const flags = driver?.nodeArgs;
    const environment = driver?.environment ? `in its environment (\`${driver.environment}\`, the Dockerfile's ENV), ` : "";
    return `; it sets none), started as the image starts it: ${environment}from the start-up snapshot that \`node dist/build-snapshot.js\` builds with the same Node (\`node ${flags ? `${flags} ` : ""}--snapshot-blob FILE -- ARGS\`, the Dockerfile's ENTRYPOINT); for the lever's before/after, also as \`node dist/do-csi-plugin.js ARGS\`. `;
  }
  if (has(FORMER_FLAGS_SUBJECT))
    return `; it sets none) and, for the lever's before/after, with the heap flags the image set until 2026-12-05 (\`${FORMER_HEAP_FLAGS}\`). `;
  return "; for the lever's before/after, without them). ";
}

export function floorSection(
  results: readonly FloorRuntimeResult[],
  date: string,
  earlier: EarlierFloors = committedEarlierFloors(),
): string[] {
  const L: string[] = [FLOOR_BEGIN, "", "## Against the runtime's floor (issue 13)", ""];
  L.push(
    `Measured ${date}. Baseline: \`bench/workers/bare-grpc-server.mjs\`, a gRPC server on bare \`node:http2\` (no library) answering every unary call with an empty message and grpc-status 0, ` +
      "on the same Node binary, the same kind of unix socket and the same load client (the project's connect-node client, `src/csi/client.ts`, in its own process) as the driver. " +
      `Driver: \`--backend local --mode node\` with the image's \`NODE_OPTIONS\` (read from the Dockerfile${driverStartNote(results)}` +
      `Start-up: spawn -> first Probe OK, median of the interleaved starts. RSS: VmRSS 2 s after ready (idle: the median over every start of the subject), after ${FLOOR_FIRST_CALLS.toLocaleString("en")} Probes and after ${FLOOR_TOTAL_CALLS.toLocaleString("en")} Probes at c=${FLOOR_CONCURRENCY}. ` +
      `CPU per Probe: the process's utime + stime over Probes ${FLOOR_FIRST_CALLS.toLocaleString("en")}–${FLOOR_TOTAL_CALLS.toLocaleString("en")} (the first ${FLOOR_FIRST_CALLS.toLocaleString("en")} in brackets). ` +
      `The RSS after load, CPU and latency figures are the median over the processes put under load, one per subject in turn (three in a full run; each process's figures are in the results JSON; runs before 2026-12-05T17:30Z put one process per subject under load).`,
  );
  for (const { runtime, measures } of results) {
    const base = measures.find((m) => m.subject === "baseline");
    if (!base) continue;
    L.push("");
    L.push(`### ${runtime.name}: v${runtime.version}`);
    L.push("");
    L.push(
      "| figure | target (from the baseline) | baseline | " +
        measures
          .filter((m) => m !== base)
          .map((m) => `${m.subject}${m.nodeOptions ? ` (\`${m.nodeOptions}\`)` : ""}`)
          .join(" | ") +
        " |",
    );
    L.push(
      `|---|---|---|${measures
        .filter((m) => m !== base)
        .map(() => "---|")
        .join("")}`,
    );
    const others = measures.filter((m) => m !== base);
    const row = (name: string, target: number, unit: string, value: (m: FloorMeasure) => number, detail?: (m: FloorMeasure) => string) =>
      L.push(
        `| ${name} | <= ${f1(target)} ${unit} | ${f1(value(base))}${detail ? ` ${detail(base)}` : ""} | ${others.map((m) => `${f1(value(m))}${detail ? ` ${detail(m)}` : ""} ${verdict(value(m), target)}`).join(" | ")} |`,
      );
    row(
      "spawn -> first Probe OK (ms)",
      startMs(base) + FLOOR_TARGETS.startupPlusMs,
      "ms",
      startMs,
      (m) => `(${m.readyMs.map(f0).join(", ")})`,
    );
    row(
      "RSS idle (MiB)",
      mib(idleRss(base)) + FLOOR_TARGETS.idlePlusMiB,
      "MiB",
      (m) => mib(idleRss(m)),
      (m) => split(idleMedianSample(m)),
    );
    row(
      `RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes (MiB)`,
      mib(idleRss(base)) + FLOOR_TARGETS.loadedPlusIdleMiB,
      "MiB",
      (m) => mib(loadedSample(m, "afterFirst").rss),
      (m) => split(loadedSample(m, "afterFirst")),
    );
    row(
      `RSS after ${FLOOR_TOTAL_CALLS / 1000}k Probes (MiB)`,
      mib(idleRss(base)) + FLOOR_TARGETS.loadedPlusIdleMiB,
      "MiB",
      (m) => mib(loadedSample(m, "afterTotal").rss),
      (m) => split(loadedSample(m, "afterTotal")),
    );
    row(
      "CPU per Probe (µs)",
      cpuPerProbe(base) * FLOOR_TARGETS.cpuTimes,
      "µs",
      cpuPerProbe,
      (m) => `(${f0(loadMedian(m, (l) => l.firstCpuUsPerCall))})`,
    );
    L.push(
      `| client p50 / p99 at c=${FLOOR_CONCURRENCY} (µs, context) | | ${[base, ...others].map((m) => `${f0(loadMedian(m, (l) => l.p50Us))} / ${f0(loadMedian(m, (l) => l.p99Us))}`).join(" | ")} |`,
    );
  }
  L.push("");
  L.push("Levers (before -> after, same run, same Node):");
  L.push("");
  for (const { runtime, measures } of results) {
    const shipped = measures.find((m) => m.subject === "driver");
    const bare = measures.find((m) => m.subject === NO_FLAGS_SUBJECT);
    const former = measures.find((m) => m.subject === FORMER_FLAGS_SUBJECT);
    const noSnapshot = measures.find((m) => m.subject === NO_SNAPSHOT_SUBJECT);
    if (shipped && noSnapshot)
      L.push(
        `- Start-up snapshot (before: \`node dist/do-csi-plugin.js\`; after: \`node ${shipped.nodeArgs ? `${shipped.nodeArgs} ` : ""}--snapshot-blob FILE --\`, as the image starts it), ${runtime.name} v${runtime.version}: ${beforeAfter(noSnapshot, shipped)}`,
      );
    if (shipped && bare)
      L.push(
        `- V8 heap limits (the image's \`NODE_OPTIONS="${shipped.nodeOptions}"\`), ${runtime.name} v${runtime.version}: ${beforeAfter(bare, shipped)}`,
      );
    if (shipped && former)
      L.push(
        `- No V8 flags in the image (before: \`NODE_OPTIONS="${former.nodeOptions}"\`; after: none, the plugin holding its young generation and trimming its heap itself), ${runtime.name} v${runtime.version}: ${beforeAfter(former, shipped)}`,
      );
  }
  for (const lever of ACROSS_RUNS_LEVERS) {
    for (const { runtime, measures } of results) {
      const r = acrossRuns(earlier[lever.before], runtime, measures);
      if (!r) continue;
      L.push(
        `- ${lever.what}, ${runtime.name} v${runtime.version}, the driver as the image runs it, before in \`${EARLIER_RUNS[lever.before]}\` (its baseline in brackets), after in this run: ${lever.figures(r)}`,
      );
    }
  }
  for (const note of FLOOR_NOTES) L.push(`- ${note}`);
  L.push("");
  L.push(FLOOR_END);
  return L;
}

/** RESULTS.md with its floor section replaced by `section` (or the section added after the summary). */
export function replaceFloorSection(markdown: string, section: readonly string[]): string {
  const text = section.join("\n");
  const begin = markdown.indexOf(FLOOR_BEGIN);
  const end = markdown.indexOf(FLOOR_END);
  if (begin >= 0 && end > begin) return markdown.slice(0, begin) + text + markdown.slice(end + FLOOR_END.length);
  const anchor = markdown.indexOf("\n## 1.");
  if (anchor < 0) return `${markdown.trimEnd()}\n\n${text}\n`;
  return `${markdown.slice(0, anchor)}\n${text}\n${markdown.slice(anchor)}`;
}
