/**
 * The "Against the runtime's floor" section of bench/RESULTS.md (issue 13):
 * per Node version, each figure of the driver against its target computed
 * from the baseline server measured in the same run, and the V8-flags lever's
 * before/after. A `--only floor` run rewrites just this section.
 */
import { mib } from "./lib/proc.js";
import { summarize } from "./lib/stats.js";
import {
  FLOOR_CONCURRENCY,
  FLOOR_FIRST_CALLS,
  FLOOR_TARGETS,
  FLOOR_TOTAL_CALLS,
  type FloorMeasure,
  type FloorRuntimeResult,
} from "./scenarios/floor.js";

/**
 * Levers weighed by hand, not measured by this section's run: what each bought
 * when it was tried, and why it is or is not in the driver.
 */
const FLOOR_NOTES: readonly string[] = [
  "Heap flags tried before choosing (Node 20, RSS 2 s after 20k Probes at c=64, one process each, 2026-12-05): none 90.5 MiB; `--max-semi-space-size=1` alone 92.3 MiB (the young generation is not where the growth is); `--max-old-space-size=32` 72.3; `=48` with semi space 1: 72.2; `=64` with semi space 1: 72.2; `=24` with semi space 1: 69.9 MiB. A cap of 64 MiB buys as much as the smaller ones and leaves the controller's page-bounded listings room (their live heap stays near 10 MiB). `--optimize-for-size` is refused in NODE_OPTIONS (the process exits at start), so it would need the entrypoint's command line instead.",
  "Loading less at start: already in place before this work (backends, the controller and node services, the logger's pretty printer and prom-client are imported per mode; the bundle is split into chunks). What a node-mode start still loads is the gRPC server chunk (grpc-js, about 640 KB) and the protobuf descriptors of csi.proto.",
  "Compile cache (`NODE_COMPILE_CACHE`, Node 22), tried by hand on the image's Node with a warm cache: spawn -> first Probe 184–268 ms without, 168–264 ms with (about 15 ms, under 10%); not adopted: the image would have to warm the cache at build time with a full start, since a container starts from a fresh layer.",
  "The bare server above is the floor a lean (library-free) gRPC server could reach; the driver's remaining CPU per Probe and start-up are grpc-js, the protobuf runtime and the call handler. A lean server that keeps every guarantee of docs/transport.md was not built.",
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

/** Steady-state CPU per Probe: the calls after the first FLOOR_FIRST_CALLS (JIT warm by then). */
function cpuPerProbe(m: FloorMeasure): number {
  return m.restRun.driverCpuUsPerCall;
}

export function floorSection(results: readonly FloorRuntimeResult[], date: string): string[] {
  const L: string[] = [FLOOR_BEGIN, "", "## Against the runtime's floor (issue 13)", ""];
  L.push(
    `Measured ${date}. Baseline: \`bench/workers/bare-grpc-server.mjs\`, a gRPC server on bare \`node:http2\` (no library) answering every unary call with an empty message and grpc-status 0, ` +
      "on the same Node binary, the same kind of unix socket and the same load client (the project's grpc-js client in its own process) as the driver. " +
      `Driver: \`--backend local --mode node\` with the image's \`NODE_OPTIONS\` (read from the Dockerfile) and, for the lever's before/after, without them. ` +
      `Start-up: spawn -> first Probe OK, median of the interleaved starts. RSS: VmRSS 2 s after ready (idle), after ${FLOOR_FIRST_CALLS.toLocaleString("en")} Probes and after ${FLOOR_TOTAL_CALLS.toLocaleString("en")} Probes at c=${FLOOR_CONCURRENCY}. ` +
      `CPU per Probe: the process's utime + stime over Probes ${FLOOR_FIRST_CALLS.toLocaleString("en")}–${FLOOR_TOTAL_CALLS.toLocaleString("en")} (the first ${FLOOR_FIRST_CALLS.toLocaleString("en")} in brackets). One process per subject.`,
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
    row("RSS idle (MiB)", mib(base.idle.rss) + FLOOR_TARGETS.idlePlusMiB, "MiB", (m) => mib(m.idle.rss));
    row(`RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes (MiB)`, mib(base.idle.rss) + FLOOR_TARGETS.loadedPlusIdleMiB, "MiB", (m) =>
      mib(m.afterFirst.rss),
    );
    row(`RSS after ${FLOOR_TOTAL_CALLS / 1000}k Probes (MiB)`, mib(base.idle.rss) + FLOOR_TARGETS.loadedPlusIdleMiB, "MiB", (m) =>
      mib(m.afterTotal.rss),
    );
    row(
      "CPU per Probe (µs)",
      cpuPerProbe(base) * FLOOR_TARGETS.cpuTimes,
      "µs",
      cpuPerProbe,
      (m) => `(${f0(m.firstRun.driverCpuUsPerCall)})`,
    );
    L.push(
      `| client p50 / p99 at c=${FLOOR_CONCURRENCY} (µs, context) | | ${[base, ...others].map((m) => `${f0(m.restRun.segments.at(-1)?.p50Us ?? NaN)} / ${f0(m.restRun.segments.at(-1)?.p99Us ?? NaN)}`).join(" | ")} |`,
    );
  }
  L.push("");
  L.push("Levers (before -> after, same run, same Node):");
  L.push("");
  for (const { runtime, measures } of results) {
    const shipped = measures.find((m) => m.subject === "driver");
    const bare = measures.find((m) => m.subject === "driver, no V8 flags");
    if (!shipped || !bare) continue;
    L.push(
      `- V8 heap limits (the image's \`NODE_OPTIONS="${shipped.nodeOptions}"\`), ${runtime.name} v${runtime.version}: ` +
        `RSS after ${FLOOR_FIRST_CALLS / 1000}k Probes ${f1(mib(bare.afterFirst.rss))} -> ${f1(mib(shipped.afterFirst.rss))} MiB, after ${FLOOR_TOTAL_CALLS / 1000}k ${f1(mib(bare.afterTotal.rss))} -> ${f1(mib(shipped.afterTotal.rss))} MiB, ` +
        `idle ${f1(mib(bare.idle.rss))} -> ${f1(mib(shipped.idle.rss))} MiB, CPU per Probe ${f0(cpuPerProbe(bare))} -> ${f0(cpuPerProbe(shipped))} µs, start-up ${f0(startMs(bare))} -> ${f0(startMs(shipped))} ms.`,
    );
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
