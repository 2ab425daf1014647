/**
 * `npm run bench`: every row of issue 8's table against the built driver
 * (dist/), and issue 13's rows against a bare node:http2 gRPC server measured
 * in the same run (`--only floor`, a few minutes), then a console table, bench/results/<timestamp>.json and
 * bench/RESULTS.md. Rows 6 and 8 and the local half of row 7 need root (loop
 * devices, mounts); without root they are skipped and say so.
 *
 *   npm run bench [-- --quick] [-- --only floor,footprint,do,modify,local,listing,soak,diagnostics] [-- --no-markdown]
 *                 [-- --soak-lives N] [-- --soak-node-every N]
 */
import { execFileSync } from "node:child_process";
import { cp, mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { loadavg } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  benchRoot,
  installExitHandlers,
  leftovers,
  makeBenchRoot,
  removeBenchRoot,
  removeWithRoot,
  wasInterrupted,
} from "./lib/cleanup.js";
import { DRIVER_PATH, driverEntryPath, useDriverEntry } from "./lib/driver.js";
import { describeMachine } from "./lib/proc.js";
import {
  buildRows,
  consoleTable,
  modifySection,
  renderMarkdown,
  replaceModifySection,
  type BenchOptions,
  type BenchResults,
  type Provenance,
} from "./report.js";
import { gatherDiagnostics, type Diagnostics } from "./scenarios/diagnostics.js";
import { DROPLET, measureDoLives, REGION, type DoLifeResult } from "./scenarios/do-life.js";
import { measureDoModify, type DoModifyResult } from "./scenarios/do-modify.js";
import { floorSection, replaceFloorSection } from "./floor-report.js";
import { measureFloor, type FloorRuntimeResult } from "./scenarios/floor.js";
import { measureFootprint, measureStartup, nodePluginArgs, type FootprintRep, type StartupResult } from "./scenarios/footprint.js";
import { measureListing, type ListingResult } from "./scenarios/listing.js";
import { measureLocalLife, type LocalLifeResult } from "./scenarios/local-life.js";
import { measureSoak, type SoakResult } from "./scenarios/soak.js";

const SECTIONS = ["floor", "footprint", "do", "modify", "local", "listing", "soak", "diagnostics"] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    "no-markdown": { type: "boolean", default: false },
    render: { type: "string" },
    "with-soak": { type: "string" },
    "soak-lives": { type: "string" },
    "soak-node-every": { type: "string" },
    help: { type: "boolean", default: false },
  },
});
if (values.help) {
  process.stdout.write(
    "usage: npm run bench [-- --quick] [-- --only floor,footprint,do,modify,local,listing,soak,diagnostics] [-- --no-markdown]\n" +
      "                     [-- --soak-lives N (10000; --quick: 1000)] [-- --soak-node-every N (50; 0: controller lives only)]\n" +
      "       tsx bench/run.ts --render bench/results/<run>.json [--with-soak bench/results/<soak run>.json]\n" +
      "         (rewrite bench/RESULTS.md from a run's figures, row 8 optionally from a separate --only soak run;\n" +
      "          from an --only floor run, just its section)\n",
  );
  process.exit(0);
}
if (values.render !== undefined) {
  let results = JSON.parse(await readFile(values.render, "utf8")) as BenchResults;
  const soakFile = values["with-soak"];
  if (soakFile !== undefined) {
    // Row 8 from a separate `--only soak` run (it takes tens of minutes), marked as such in RESULTS.md.
    const soakRun = JSON.parse(await readFile(soakFile, "utf8")) as BenchResults;
    if (soakRun.soak === undefined) throw new Error(`${soakFile} has no soak figures`);
    results = {
      ...results,
      options: { ...results.options, soakNodeEvery: soakRun.options.soakNodeEvery, soakLives: soakRun.options.soakLives },
      soak: {
        ...soakRun.soak,
        run: { file: soakFile, date: soakRun.date, commit: soakRun.provenance.commit, loadAverage: soakRun.loadAverage },
      },
    };
  }
  if (results.floor && results.footprint === undefined && results.doLife === undefined) {
    // A `--only floor` run: only its section of RESULTS.md.
    const current = await readFile("bench/RESULTS.md", "utf8");
    await writeFile("bench/RESULTS.md", replaceFloorSection(current, floorSection(results.floor, results.date)));
    process.stdout.write(`bench: rewrote the floor section of bench/RESULTS.md from ${values.render}\n`);
    process.exit(0);
  }
  const rows = buildRows(results);
  const markdown = renderMarkdown(results, rows);
  await writeFile("bench/RESULTS.md", results.floor ? replaceFloorSection(markdown, floorSection(results.floor, results.date)) : markdown);
  process.stdout.write(
    `${consoleTable(rows)}\n\nbench: rewrote bench/RESULTS.md from ${values.render}${soakFile ? ` and ${soakFile}` : ""}\n`,
  );
  process.exit(0);
}
const only = new Set<Section>(
  values.only === undefined
    ? SECTIONS
    : values.only.split(",").map((s) => {
        const name = s.trim() as Section;
        if (!SECTIONS.includes(name)) {
          process.stderr.write(`bench: unknown section ${JSON.stringify(s)}; choose from ${SECTIONS.join(", ")}\n`);
          process.exit(2);
        }
        return name;
      }),
);
const quick = values.quick;
function countFlag(name: "soak-lives" | "soak-node-every", fallback: number): number {
  const text = values[name];
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    process.stderr.write(`bench: --${name} must be a whole number, not ${JSON.stringify(text.slice(0, 20))}\n`);
    process.exit(2);
  }
  return n;
}
const soakOptions = {
  soakLives: countFlag("soak-lives", quick ? 1000 : 10_000),
  soakNodeEvery: countFlag("soak-node-every", 50),
  soakConcurrency: 4,
};
const options: BenchOptions = {
  calls: quick ? 5000 : 20_000,
  reps: quick ? 2 : 3,
  starts: quick ? 5 : 10,
  doVolumes: 200,
  doConcurrency: 16,
  doRuns: quick ? 1 : 3,
  rateLimit: { limit: 200, windowMs: 1000, clientQps: 190 },
  localRuns: quick ? 3 : 8,
  listingTotals: [1000, 10_000],
  listingPageSize: 500,
  listingPasses: quick ? 2 : 3,
  ...soakOptions,
  quick,
};

const log = (line: string) => process.stdout.write(`${line}\n`);
const isRoot = process.getuid?.() === 0;

function git(args: readonly string[]): string {
  try {
    return execFileSync("git", [...args], { encoding: "utf8" }).trim();
  } catch {
    return "";
  }
}

async function provenance(): Promise<Provenance> {
  const dirty = git(["status", "--porcelain", "--", "src", "scripts/build.mjs", "package.json", "package-lock.json"])
    .split("\n")
    .filter(Boolean)
    .map((l) => l.slice(3));
  const built = await stat("dist/do-csi-plugin.js");
  return { commit: git(["rev-parse", "HEAD"]), dirtySources: dirty, builtAt: built.mtime.toISOString() };
}

/** Copy dist/ aside (inside the repository, so the bundle still resolves node_modules) so a concurrent rebuild cannot swap it mid-run. */
async function snapshotDist(): Promise<void> {
  const dir = resolve(`bench/.run-${process.pid}`);
  removeWithRoot(dir);
  await mkdir(dir, { recursive: true });
  await cp("dist", join(dir, "dist"), { recursive: true });
  useDriverEntry(join(dir, "dist", "do-csi-plugin.js"));
}

async function section<T>(name: string, errors: string[], f: () => Promise<T>): Promise<T | undefined> {
  log(`\n== ${name}`);
  const t0 = Date.now();
  try {
    const value = await f();
    log(`   (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    return value;
  } catch (err) {
    if (wasInterrupted()) return new Promise<never>(() => undefined); // the signal handler exits
    const message = `${name}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    errors.push(message);
    log(`   FAILED: ${message}`);
    return undefined;
  }
}

async function main(): Promise<number> {
  installExitHandlers();
  const started = Date.now();
  const date = new Date().toISOString();
  const loadStart = loadavg()[0] ?? NaN;
  const machine = describeMachine();
  const prov = await provenance();
  await makeBenchRoot();
  await snapshotDist();
  log(
    `bench: ${machine.cpuModel}, ${machine.cores} cores, ${(machine.memoryBytes / 2 ** 30).toFixed(1)} GiB, Linux ${machine.kernel}, Node ${machine.node}; load average ${loadStart.toFixed(2)}`,
  );
  log(
    `bench: driver ${driverEntryPath()} (built ${prov.builtAt} from ${prov.commit.slice(0, 12)}${prov.dirtySources.length > 0 ? ` + ${prov.dirtySources.length} uncommitted source files` : ""}); work dir ${benchRoot()}`,
  );

  const errors: string[] = [];
  const skipped: string[] = [];
  let floor: FloorRuntimeResult[] | undefined;
  let footprint: { reps: FootprintRep[]; startup: StartupResult } | undefined;
  let doLife: DoLifeResult | undefined;
  let doRateLimited: DoLifeResult | undefined;
  let doRateLimitedNoClientLimit: DoLifeResult | undefined;
  let doModify: DoModifyResult | undefined;
  let localLife: LocalLifeResult | undefined;
  let listing: ListingResult | undefined;
  let soak: SoakResult | undefined;
  let diagnostics: Diagnostics | undefined;
  let left: { mounts: string[]; loops: string[] } = { mounts: [], loops: [] };
  try {
    if (only.has("floor")) {
      floor = await section("rows 1-3 against the runtime's floor (a bare node:http2 gRPC server, same run, both Nodes)", errors, () =>
        measureFloor({ starts: quick ? 3 : 9, loadReps: quick ? 1 : 3, log }),
      );
    }
    if (only.has("footprint")) {
      const fpOptions = { reps: options.reps, starts: options.starts, calls: options.calls, log };
      const startup = await section("row 2: start-up (spawn -> first Probe)", errors, () => measureStartup(fpOptions));
      const reps = await section("rows 1 and 3: node plugin RSS and unary overhead", errors, () => measureFootprint(fpOptions));
      if (startup && reps) footprint = { reps, startup };
    }
    if (only.has("do")) {
      const lifeOptions = { volumes: options.doVolumes, concurrency: options.doConcurrency, runs: options.doRuns, log };
      const sim = { region: REGION, dropletId: DROPLET, extraDroplets: options.doConcurrency };
      const rl = options.rateLimit;
      const limited = { ...sim, rateLimit: { limit: rl.limit, windowMs: rl.windowMs } };
      doLife = await section("row 4: DigitalOcean lives", errors, () => measureDoLives("do-life", sim, [], lifeOptions));
      doRateLimited = await section("row 5: DigitalOcean lives under a rate limit", errors, () =>
        measureDoLives("do-rate-limited", limited, ["--do-api-rate-limit", String(rl.clientQps)], lifeOptions),
      );
      doRateLimitedNoClientLimit = await section("row 5 (comparison): the same limit, no client-side limit", errors, () =>
        measureDoLives("do-rate-limited-no-client-limit", limited, [], { ...lifeOptions, runs: 1 }),
      );
    }
    if (only.has("modify")) {
      doModify = await section("row 9: DigitalOcean volume modification (tags)", errors, () =>
        measureDoModify({ region: REGION, dropletId: DROPLET, extraDroplets: 0 }, quick ? 10 : 50, log),
      );
    }
    if (only.has("local")) {
      if (isRoot)
        localLife = await section("row 6: local volume life vs a plain script", errors, () =>
          measureLocalLife({ runs: options.localRuns, log }),
        );
      else skipped.push("row 6 (local volume life) needs root");
    }
    if (only.has("listing")) {
      if (!isRoot) skipped.push("row 7's local backend half needs root");
      listing = await section("row 7: listing at scale", errors, () =>
        measureListing({
          totals: options.listingTotals,
          pageSize: options.listingPageSize,
          passes: options.listingPasses,
          grpcCreates: 100,
          createsAtScale: 3,
          local: isRoot,
          log,
        }),
      );
    }
    if (only.has("soak")) {
      if (isRoot)
        soak = await section(`row 8: soak, ${soakOptions.soakLives.toLocaleString("en")} volume lives`, errors, () =>
          measureSoak({
            lives: soakOptions.soakLives,
            nodeEvery: soakOptions.soakNodeEvery,
            concurrency: soakOptions.soakConcurrency,
            samples: 200,
            log,
          }),
        );
      else skipped.push("row 8 (soak) needs root");
    }
    if (only.has("diagnostics")) {
      diagnostics = await section("diagnostics (separate processes: CPU profiles, heap reports, strace)", errors, () =>
        gatherDiagnostics({ calls: quick ? 3000 : 5000, local: isRoot, log }),
      );
    }
    left = await leftovers(benchRoot());
  } finally {
    const swept = await removeBenchRoot();
    if (swept && (swept.unmounted.length > 0 || swept.detached.length > 0)) {
      errors.push(`cleanup had to remove mounts ${swept.unmounted.join(", ")} and loop devices ${swept.detached.join(", ")}`);
    }
  }

  const results: BenchResults = {
    schema: 1,
    date,
    durationS: (Date.now() - started) / 1000,
    machine,
    loadAverage: { start: loadStart, end: loadavg()[0] ?? NaN },
    provenance: prov,
    options,
    commands: {
      nodePlugin: `node dist/do-csi-plugin.js --endpoint unix://<dir>/csi.sock ${nodePluginArgs("<dir>").join(" ")}`,
      doController: "node dist/do-csi-plugin.js --endpoint unix://<dir>/csi.sock --token x --region nyc3 --url http://127.0.0.1:<port>/",
      localAllInOne:
        "node dist/do-csi-plugin.js --endpoint unix://<dir>/csi.sock --backend local --mode all --data-dir <dir>/data --node-id n1",
      localController:
        "node dist/do-csi-plugin.js --endpoint unix://<dir>/csi.sock --backend local --mode controller --data-dir <dir>/data --node-id n1",
      driverPath: DRIVER_PATH,
    },
    skipped: [...skipped, ...errors.map((e) => `error in ${e.split("\n")[0] ?? e}`)],
    ...(floor ? { floor } : {}),
    ...(footprint ? { footprint } : {}),
    ...(doLife ? { doLife } : {}),
    ...(doRateLimited ? { doRateLimited } : {}),
    ...(doRateLimitedNoClientLimit ? { doRateLimitedNoClientLimit } : {}),
    ...(doModify ? { doModify } : {}),
    ...(localLife ? { localLife } : {}),
    ...(listing ? { listing } : {}),
    ...(soak ? { soak } : {}),
    ...(diagnostics ? { diagnostics } : {}),
    leftovers: left,
  };
  const rows = buildRows(results);
  results.rows = rows;

  await mkdir("bench/results", { recursive: true });
  const jsonPath = `bench/results/${date.replace(/[:.]/g, "-")}.json`;
  await writeFile(jsonPath, `${JSON.stringify(results, null, 1)}\n`);
  const full = only.size === SECTIONS.length;
  if (full && !values["no-markdown"]) await writeFile("bench/RESULTS.md", renderMarkdown(results, rows));

  // The floor and modification sections are rewritten by any run that measured them, partial runs too.
  if (floor && !values["no-markdown"]) {
    const current = await readFile("bench/RESULTS.md", "utf8");
    await writeFile("bench/RESULTS.md", replaceFloorSection(current, floorSection(floor, date)));
  }
  if (doModify && !values["no-markdown"]) {
    const current = await readFile("bench/RESULTS.md", "utf8");
    await writeFile("bench/RESULTS.md", replaceModifySection(current, modifySection(doModify, date, results.commands.doController ?? "")));
  }
  log(`\n${consoleTable(rows)}`);
  log(
    `\nbench: ${results.durationS.toFixed(0)} s; wrote ${jsonPath}${full && !values["no-markdown"] ? " and bench/RESULTS.md" : ` (partial run: RESULTS.md left as it was${floor || doModify ? ", but for the sections it measured" : ""})`}`,
  );
  if (errors.length > 0) {
    log(`bench: ${errors.length} section(s) failed:\n${errors.join("\n")}`);
    return 1;
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    await removeBenchRoot().catch(() => undefined);
    process.exit(1);
  },
);
