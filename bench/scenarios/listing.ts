/**
 * Row 7: ListVolumes over 10,000 volumes, page size 500, for the local backend
 * and for the DigitalOcean simulator, with the driver's RSS watched while it
 * lists, and the same measured at 1,000 volumes: if memory is bounded by the
 * page, the growth while listing is about the same for both totals.
 *
 * Local volumes: CreateVolume costs grow with the number of volumes (see
 * RESULTS.md), so 10,000 cannot be created through gRPC in a benchmark's time.
 * A first batch is created through the driver; the driver is stopped and its
 * own records are replicated (new ids, names and list positions, each with a
 * sparse image file of the record's size) in its state file; the driver is
 * started again on that data dir and must load and reconcile it. The cost of
 * CreateVolume is measured at each total, so the shortcut is documented by
 * figures.
 */
import { mkdir, open, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { writeFileSync } from "node:fs";
import { stateFilePath, volumeImagePath } from "../../src/backend/local/layout.js";
import { newVolumeId, volumeNodeOf } from "../../src/backend/local/local-ids.js";
import type { CsiClients } from "../../src/csi/client.js";
import { benchRoot } from "../lib/cleanup.js";
import { startDriver, type RunningDriver } from "../lib/driver.js";
import { diagnosticNodeOptions, forceFullGc, reportOf } from "../lib/node-report.js";
import { rssBytes, statusBytes } from "../lib/proc.js";
import { controllerArgs, DROPLET, REGION, simCounts, startSimulator, type Simulator } from "./do-life.js";
import { mountCapability } from "./local-life.js";

const MiB = 1024 * 1024;

export interface ListingOptions {
  readonly totals: readonly number[];
  readonly pageSize: number;
  readonly passes: number;
  /** Local volumes created through gRPC before seeding. */
  readonly grpcCreates: number;
  /** CreateVolume calls timed at each total (local backend). */
  readonly createsAtScale: number;
  readonly log: (line: string) => void;
}

export interface ListingPass {
  readonly items: number;
  readonly pages: number;
  readonly wallMs: number;
  readonly pageMs: { readonly median: number; readonly max: number };
  /** Peak RSS during the pass (VmHWM after resetting it through /proc/<pid>/clear_refs). */
  readonly peakRss: number;
  /** RSS after each page (the curve flattens when memory is bounded by the page). */
  readonly rssAfterPage: readonly number[];
}

export interface ListingAtTotal {
  readonly total: number;
  readonly startupMs: number;
  /** RSS 1 s after the driver is ready, before listing. */
  readonly baselineRss: number;
  readonly passes: readonly ListingPass[];
  /** max(peak RSS over the passes) - baseline. */
  readonly growth: number;
  /** RSS 1 s after the last pass. */
  readonly afterRss: number;
  /**
   * Live V8 heap (used after a forced full GC) after the measured passes, and
   * again after one more full listing: what one listing leaves alive.
   */
  readonly liveHeap?: { readonly before: number; readonly after: number };
  /** API requests per pass (simulator only). */
  readonly apiRequestsPerPass?: number;
  /** CreateVolume wall time at this total (local only), ms, calls made one at a time. */
  readonly createMs?: readonly number[];
}

export interface ListingResult {
  readonly local: readonly ListingAtTotal[];
  readonly simulator: readonly ListingAtTotal[];
  /** Local volumes created through gRPC first: count, wall ms, concurrency. */
  readonly grpcCreate: { readonly count: number; readonly wallMs: number; readonly concurrency: number };
  /** Time to write the replicated records and sparse images for the largest total. */
  readonly seedMs: Record<string, number>;
}

/** Reset a process's VmHWM to its current RSS (Linux >= 4.0, root). */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

async function listAll(c: CsiClients, pid: number, pageSize: number): Promise<ListingPass> {
  const canReset = resetPeak(pid);
  let sampledPeak = rssBytes(pid);
  const sampler = setInterval(() => {
    try {
      sampledPeak = Math.max(sampledPeak, rssBytes(pid));
    } catch {
      // process gone; the caller will notice
    }
  }, 5);
  const ids = new Set<string>();
  const pageTimes: number[] = [];
  const rssAfterPage: number[] = [];
  let token = "";
  let pages = 0;
  const started = performance.now();
  try {
    do {
      const t0 = performance.now();
      const page = await c.controller.listVolumes({ maxEntries: pageSize, startingToken: token });
      pageTimes.push(performance.now() - t0);
      rssAfterPage.push(rssBytes(pid));
      pages++;
      if (page.entries.length > pageSize) throw new Error(`a page of ${page.entries.length} entries for max_entries ${pageSize}`);
      for (const e of page.entries) {
        const id = e.volume?.volumeId ?? "";
        if (ids.has(id)) throw new Error(`volume ${id} listed twice`);
        ids.add(id);
      }
      token = page.nextToken;
    } while (token !== "");
  } finally {
    clearInterval(sampler);
  }
  const wallMs = performance.now() - started;
  const peakRss = Math.max(sampledPeak, canReset ? statusBytes(pid, "VmHWM") : 0);
  pageTimes.sort((a, b) => a - b);
  return {
    items: ids.size,
    pages,
    wallMs,
    pageMs: { median: pageTimes[Math.floor(pageTimes.length / 2)] ?? NaN, max: pageTimes.at(-1) ?? NaN },
    peakRss,
    rssAfterPage,
  };
}

/** Start a driver for the listing row; it can be asked for heap reports and a full GC (inert until signalled). */
async function startListingDriver(
  name: string,
  args: readonly string[],
  timeoutMs?: number,
): Promise<{ driver: RunningDriver; reports: string }> {
  const reports = join(benchRoot(), name, "reports");
  await mkdir(reports, { recursive: true });
  const driver = await startDriver({
    name,
    args,
    nodeOptions: diagnosticNodeOptions(reports),
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
  });
  return { driver, reports };
}

async function liveHeapAround(
  driver: RunningDriver,
  reports: string,
  pageSize: number,
): Promise<{ before: number; after: number } | undefined> {
  try {
    await forceFullGc(driver.pid, reports);
    const before = (await reportOf(driver.pid, reports)).heapUsed;
    await listAll(driver.clients, driver.pid, pageSize);
    await forceFullGc(driver.pid, reports);
    const after = (await reportOf(driver.pid, reports)).heapUsed;
    return { before, after };
  } catch {
    return undefined;
  }
}

async function measureAtTotal(
  driver: RunningDriver,
  reports: string,
  total: number,
  options: ListingOptions,
  sim?: Simulator,
): Promise<Omit<ListingAtTotal, "createMs">> {
  await sleep(1000);
  const baselineRss = rssBytes(driver.pid);
  const passes: ListingPass[] = [];
  let apiRequests = 0;
  for (let p = 0; p < options.passes; p++) {
    if (sim) await sim.request({ kind: "reset" });
    const pass = await listAll(driver.clients, driver.pid, options.pageSize);
    if (sim) apiRequests += (await simCounts(sim)).apiRequests;
    if (pass.items !== total) throw new Error(`listed ${pass.items} volumes of ${total}`);
    passes.push(pass);
  }
  await sleep(1000);
  const afterRss = rssBytes(driver.pid);
  const growth = Math.max(...passes.map((p) => p.peakRss)) - baselineRss;
  // After the RSS figures: the forced GCs (heap snapshots) inflate RSS themselves.
  const liveHeap = await liveHeapAround(driver, reports, options.pageSize);
  return {
    total,
    startupMs: driver.readyMs,
    baselineRss,
    passes,
    growth,
    afterRss,
    ...(liveHeap ? { liveHeap } : {}),
    ...(sim ? { apiRequestsPerPass: apiRequests / options.passes } : {}),
  };
}

function describe(kind: string, r: ListingAtTotal): string {
  const p = r.passes;
  return (
    `  ${kind} ${r.total}: ready in ${r.startupMs.toFixed(0)} ms, baseline ${(r.baselineRss / MiB).toFixed(1)} MiB, peak +${(r.growth / MiB).toFixed(1)} MiB while listing, ` +
    `${p[0]?.pages ?? 0} pages in ${p.map((x) => x.wallMs.toFixed(0)).join("/")} ms` +
    (r.apiRequestsPerPass !== undefined ? `, ${r.apiRequestsPerPass} API requests per pass` : "") +
    (r.liveHeap
      ? `, live heap ${(r.liveHeap.before / MiB).toFixed(1)} -> ${(r.liveHeap.after / MiB).toFixed(1)} MiB over one more listing`
      : "") +
    (r.createMs ? `, CreateVolume ${r.createMs.map((m) => m.toFixed(0)).join("/")} ms` : "")
  );
}

// ---------------------------------------------------------------- local backend

interface StateFile {
  lastListPosition: number;
  volumes: Record<string, { id: string; name: string; phase: string; sizeBytes: number; listPosition: number; createdAt: string }>;
}

/**
 * Grow the (stopped) driver's data dir to `total` ready volumes by
 * replicating its own ready records: fresh ids (the backend's id generator),
 * names and list positions, and a sparse image file of each record's size.
 */
async function seedLocal(dataDir: string, total: number): Promise<number> {
  const path = stateFilePath(dataDir);
  const state = JSON.parse(await readFile(path, "utf8")) as StateFile;
  const templates = Object.values(state.volumes).filter((v) => v.phase === "ready");
  if (templates.length === 0) throw new Error("no ready volume to replicate in the local state");
  const missing = total - Object.keys(state.volumes).length;
  const created: { id: string; size: number }[] = [];
  for (let i = 0; i < missing; i++) {
    const template = templates[i % templates.length];
    if (!template) throw new Error("no template");
    const id = newVolumeId(volumeNodeOf(template.id) ?? "bench");
    state.lastListPosition += 1;
    state.volumes[id] = {
      ...template,
      id,
      name: `seeded-${state.lastListPosition}`,
      listPosition: state.lastListPosition,
      createdAt: new Date().toISOString(),
    };
    created.push({ id, size: template.sizeBytes });
  }
  let next = 0;
  const worker = async () => {
    for (;;) {
      const item = created[next++];
      if (!item) return;
      const handle = await open(volumeImagePath(dataDir, item.id), "wx", 0o600);
      await handle.truncate(item.size);
      await handle.close();
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
  // The driver writes its state with JSON.stringify(state, null, 1); keep the same form.
  await writeFile(path, `${JSON.stringify(state, null, 1)}\n`);
  return missing;
}

async function createVolumes(c: CsiClients, prefix: string, count: number, concurrency: number): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      const t0 = performance.now();
      await c.controller.createVolume({
        name: `${prefix}-${i}`,
        capacityRange: { requiredBytes: BigInt(MiB), limitBytes: 0n },
        volumeCapabilities: [mountCapability()],
      });
      times.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
  return times;
}

async function measureLocal(
  options: ListingOptions,
): Promise<{ results: ListingAtTotal[]; grpcCreate: ListingResult["grpcCreate"]; seedMs: Record<string, number> }> {
  const dir = join(benchRoot(), "listing-local");
  const dataDir = join(dir, "data");
  const args = ["--backend", "local", "--mode", "controller", "--data-dir", dataDir, "--node-id", "n1"];
  const results: ListingAtTotal[] = [];
  const seedMs: Record<string, number> = {};
  let driver: RunningDriver | undefined = await startDriver({ name: "listing-local/create", args });
  let grpcCreate: ListingResult["grpcCreate"];
  try {
    const concurrency = 16;
    const t0 = performance.now();
    await createVolumes(driver.clients, "grpc", options.grpcCreates, concurrency);
    grpcCreate = { count: options.grpcCreates, wallMs: performance.now() - t0, concurrency };
    options.log(
      `  local: ${options.grpcCreates} volumes created through gRPC (concurrency ${concurrency}) in ${grpcCreate.wallMs.toFixed(0)} ms`,
    );
    await driver.stop();
    driver = undefined;
    for (const total of options.totals) {
      const seeded = performance.now();
      await seedLocal(dataDir, total);
      seedMs[String(total)] = performance.now() - seeded;
      let reports: string;
      ({ driver, reports } = await startListingDriver(`listing-local/${total}`, args, 120_000));
      const measured = await measureAtTotal(driver, reports, total, options);
      const createMs = await createVolumes(driver.clients, `at-${total}`, options.createsAtScale, 1);
      const result = { ...measured, createMs };
      results.push(result);
      options.log(describe("local", result));
      await driver.stop(60_000);
      driver = undefined;
    }
  } finally {
    await driver?.stop();
  }
  return { results, grpcCreate, seedMs };
}

// ---------------------------------------------------------------- simulator

async function measureSimulator(options: ListingOptions): Promise<ListingAtTotal[]> {
  const { sim, url } = await startSimulator({ region: REGION, dropletId: DROPLET, extraDroplets: 0 });
  const results: ListingAtTotal[] = [];
  let driver: RunningDriver | undefined;
  try {
    let seeded = 0;
    for (const total of options.totals) {
      const counts = await sim.request({ kind: "seed", count: total - seeded, prefix: `seed-${total}` });
      seeded = counts?.volumes ?? total;
      let reports: string;
      ({ driver, reports } = await startListingDriver(`listing-sim/${total}`, controllerArgs(url)));
      const result = await measureAtTotal(driver, reports, total, options, sim);
      results.push(result);
      options.log(describe("simulator", result));
      await driver.stop();
      driver = undefined;
    }
  } finally {
    await driver?.stop();
    await sim.stop();
  }
  return results;
}

/** Both backends; the local one needs root (it is skipped with `local: false`). */
export async function measureListing(options: ListingOptions & { readonly local: boolean }): Promise<ListingResult> {
  const local = options.local
    ? await measureLocal(options)
    : { results: [], grpcCreate: { count: 0, wallMs: 0, concurrency: 0 }, seedMs: {} };
  const simulator = await measureSimulator(options);
  return { local: local.results, simulator, grpcCreate: local.grpcCreate, seedMs: local.seedMs };
}
