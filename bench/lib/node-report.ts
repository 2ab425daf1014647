/**
 * V8 heap figures of a running driver from Node's diagnostic report
 * (`--report-on-signal`), and a forced full garbage collection through a heap
 * snapshot (`--heapsnapshot-signal`; V8 collects garbage before it writes one).
 * The options are inert until the signal arrives; only diagnostics and the
 * retained-memory check of the listing row use them.
 */
import { readdir, readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { rssSample } from "./proc.js";

export interface HeapFigures {
  readonly rss: number;
  readonly rssAnon: number;
  readonly rssFile: number;
  /** V8 heap reserved (javascriptHeap.totalMemory) and used. */
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
  /** Committed memory per V8 heap space. */
  readonly spaces: Record<string, number>;
}

interface NodeReport {
  readonly javascriptHeap: {
    readonly totalMemory: number;
    readonly usedMemory: number;
    readonly externalMemory?: number;
    readonly heapSpaces: Record<string, { readonly committedMemory?: number; readonly memorySize?: number }>;
  };
}

export async function reportOf(pid: number, dir: string): Promise<HeapFigures> {
  const before = new Set(await readdir(dir));
  const proc = rssSample(pid);
  process.kill(pid, "SIGUSR2");
  for (let i = 0; i < 200; i++) {
    await sleep(25);
    const fresh = (await readdir(dir)).filter((f) => !before.has(f) && f.endsWith(".json"));
    const [file] = fresh;
    if (!file) continue;
    let report: NodeReport;
    try {
      report = JSON.parse(await readFile(join(dir, file), "utf8")) as NodeReport;
    } catch {
      continue; // still being written
    }
    const h = report.javascriptHeap;
    const spaces: Record<string, number> = {};
    for (const [space, v] of Object.entries(h.heapSpaces)) spaces[space] = v.committedMemory ?? v.memorySize ?? 0;
    return {
      rss: proc.rss,
      rssAnon: proc.anon,
      rssFile: proc.file,
      heapTotal: h.totalMemory,
      heapUsed: h.usedMemory,
      external: h.externalMemory ?? 0,
      spaces,
    };
  }
  throw new Error(`no diagnostic report from ${pid}`);
}

/** Node options enabling both signals, writing into `dir`. */
export const diagnosticNodeOptions = (dir: string): string[] => [
  ...REPORT_OPTIONS(dir),
  `--heapsnapshot-signal=${SNAPSHOT_SIGNAL}`,
  `--diagnostic-dir=${dir}`,
];

export const REPORT_OPTIONS = (dir: string): string[] => ["--report-on-signal", "--report-signal=SIGUSR2", `--report-directory=${dir}`];
const SNAPSHOT_SIGNAL = "SIGTTIN";

/** Make the process write a heap snapshot (V8 runs a full GC first) and wait until the file is complete. */
export async function forceFullGc(pid: number, dir: string): Promise<void> {
  const before = new Set(await readdir(dir));
  process.kill(pid, SNAPSHOT_SIGNAL);
  let lastSize = -1;
  for (let i = 0; i < 600; i++) {
    await sleep(50);
    const [file] = (await readdir(dir)).filter((f) => !before.has(f) && f.endsWith(".heapsnapshot"));
    if (!file) continue;
    const { size } = await stat(join(dir, file));
    // A complete snapshot ends with "]}" and stops growing.
    if (size > 0 && size === lastSize) {
      const tail = (await readFile(join(dir, file), "utf8")).trimEnd().slice(-2);
      if (tail === "]}" || tail === "}") {
        await rm(join(dir, file), { force: true });
        return;
      }
    }
    lastSize = size;
  }
  throw new Error("no heap snapshot written");
}
