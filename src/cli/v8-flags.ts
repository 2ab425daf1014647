/**
 * The V8 flags the plugin sets on itself, and why each is set when it is.
 *
 * Node ships its built-in modules (node:http2, node:net, ...) with a V8 code
 * cache made under V8's default flags, and V8 takes a cache only when the flags
 * in force hash as they did when it was made. So any flag away from its default
 * makes Node compile every built-in it loads from source instead: heap sizes in
 * NODE_OPTIONS, or a flag set at run time. Loading node:http2 then takes
 * 25-35 ms instead of 10 (Node 20 and 22), and a node plugin's start-up loads
 * about 80 built-ins. Before the program's first line it costs 12-17 ms more
 * (Node's own module loader), which is why the image sets no V8 flags at all
 * and the plugin bounds its heap from here instead (bench/RESULTS.md).
 *
 * - Heap sizes someone passes anyway (`--max-old-space-size`,
 *   `--max-semi-space-size`, the two NODE_OPTIONS accepts) are read once, when
 *   V8 sets the heap up before any JavaScript runs. Setting them back to their
 *   defaults afterwards leaves the heap's limits as they were configured and the
 *   flags hashing as Node's cache expects: `restoreHeapFlagDefaults` does that
 *   first thing.
 * - The young generation stops growing: `--semi-space-growth-factor=1`, set
 *   before the program's own modules load and kept. It starts at 1 MiB (both
 *   semi spaces) and may double once while the built-ins load (before any
 *   flag can be set without costing the cache), so it stays within 2 MiB.
 *   V8 would otherwise double it under a burst of calls up to 32 MiB (16 per
 *   semi space), and Node 20's V8 never shrinks it again
 *   (test/cli/heap-bounds.test.ts).
 * - The old generation grows by at most 30% over its live size between full
 *   collections once the plugin serves (`--heap-growing-percent`, which V8
 *   reads each time it sets the next limit): the bound the image's
 *   `--max-old-space-size` used to give.
 * - Start-up runs a lot of code once (the protobuf descriptors, module bodies).
 *   TurboFan optimizing it costs several MiB for no speed-up, so it is held
 *   back while the plugin starts (`holdBackWhileStarting`) and released once it
 *   serves (`releaseAfterStart`).
 *   Both change the hash too, so they start only once the built-ins start-up
 *   needs are loaded (startup-builtins.ts).
 */
import { setFlagsFromString } from "node:v8";

/** After V8 has sized the heap: its size flags back at their defaults (0: sized by V8). The limits stay. */
export function restoreHeapFlagDefaults(): void {
  setFlagsFromString("--max-old-space-size=0");
  setFlagsFromString("--max-semi-space-size=0");
}

/** While the plugin starts: no optimizing compiler; and from now on a young generation that does not grow. */
export function holdBackWhileStarting(): void {
  setFlagsFromString("--no-turbofan");
  setFlagsFromString("--semi-space-growth-factor=1");
}

/**
 * Once the plugin serves: the optimizing compiler again (the young generation
 * stays as it is), and an old generation V8 lets grow by 30% over what its last
 * full collection left live before it collects again.
 */
export function releaseAfterStart(): void {
  setFlagsFromString("--turbofan");
  setFlagsFromString(`--heap-growing-percent=${OLD_GENERATION_GROWTH_PERCENT}`);
}

/**
 * How far the old generation may grow past its live size between full
 * collections. V8 picks up to 300% by itself, and under a burst of calls the
 * buffers the old generation's garbage holds on to grow glibc's heap, which it
 * keeps: after 20,000 Probes at c=64 the plugin's RSS was 62.5-63.1 MiB with
 * V8's choice and 59.3-60.2 with 30% on Node 20 (the former image's 64 MiB cap:
 * 58.4-59.1), 68.0-69.9 and 66.0-66.8 MiB on Node 22, for about 5% more CPU per
 * call (by hand, two or three processes each, interleaved).
 */
const OLD_GENERATION_GROWTH_PERCENT = 30;
