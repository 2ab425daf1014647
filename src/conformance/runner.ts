import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { ConnectError } from "@connectrpc/connect";
import { CheckFailure, CheckSkipped, type Check } from "./check.js";
import { allChecks } from "./checks/index.js";
import { connectConformanceClients, type ConformanceClients } from "./clients.js";
import { CheckRun, type RunDirs } from "./context.js";
import { codeName, outcome } from "./expect.js";
import { mountsUnder } from "./host.js";
import { resolveOptions, type ConformanceOptions, type ResolvedOptions } from "./options.js";
import {
  controllerCapName,
  discoverProfile,
  DiscoveryError,
  expansionName,
  nodeCapName,
  pluginServiceName,
  type DriverProfile,
} from "./profile.js";
import { summarize, type CheckResult, type ConformanceReport } from "./report.js";

export interface RunnerEvents {
  /** Called once the driver's profile is known, before the first check. */
  onStart?(report: Pick<ConformanceReport, "plugin" | "endpoint" | "controllerEndpoint" | "capabilities">): void;
  /** Called as each check finishes (for streaming output). */
  onResult?(result: CheckResult): void;
}

/** The checks `options` selects, in run order. */
export function selectChecks(options: Pick<ConformanceOptions, "filter" | "skip">, checks: readonly Check[] = allChecks): Check[] {
  const matches = (re: RegExp, check: Check) => re.test(check.id) || re.test(check.title);
  return checks.filter(
    (check) =>
      (options.filter === undefined || matches(options.filter, check)) && (options.skip === undefined || !matches(options.skip, check)),
  );
}

/**
 * Run the conformance suite against a CSI endpoint and return the report.
 * Never throws for driver misbehaviour: that is what the report is for.
 */
export async function runConformance(
  input: ConformanceOptions,
  events: RunnerEvents = {},
  checks: readonly Check[] = allChecks,
): Promise<ConformanceReport> {
  const options = resolveOptions(input);
  const started = Date.now();
  const startedAt = new Date(started).toISOString();
  const clients = connectConformanceClients(options.endpoint, options.controllerEndpoint);
  const dirs = await makeRunDirs(options);
  const base = {
    tool: "csi-conformance" as const,
    specVersion: "1.12.0" as const,
    startedAt,
    endpoint: options.endpoint,
    controllerEndpoint: options.controllerEndpoint,
  };
  try {
    await waitUntilReady(clients, options);
    let profile: DriverProfile;
    try {
      profile = await discoverProfile(clients, () => ({ timeoutMs: options.rpcTimeoutMs }));
    } catch (err) {
      if (!(err instanceof DiscoveryError) && !(err instanceof ConnectError)) throw err;
      const fatal = err instanceof ConnectError ? `${codeName(err.code)}: ${err.rawMessage}` : err.message;
      return {
        ...base,
        durationMs: Date.now() - started,
        plugin: undefined,
        capabilities: { plugin: [], controller: "unknown", node: "unknown" },
        fatal,
        summary: summarize([]),
        checks: [],
      };
    }
    const header = {
      endpoint: options.endpoint,
      controllerEndpoint: options.controllerEndpoint,
      plugin: { name: profile.pluginName, vendorVersion: profile.vendorVersion },
      capabilities: describeCapabilities(profile),
    };
    events.onStart?.(header);

    const results: CheckResult[] = [];
    let sequence = 0;
    for (const check of selectChecks(options, checks)) {
      sequence++;
      const result = await runCheck(check, options, profile, clients, dirs, sequence);
      results.push(result);
      events.onResult?.(result);
    }
    return { ...base, ...header, durationMs: Date.now() - started, summary: summarize(results), checks: results };
  } finally {
    clients.close();
    await removeRunDirs(dirs);
  }
}

function describeCapabilities(profile: DriverProfile): ConformanceReport["capabilities"] {
  return {
    plugin: [
      ...profile.pluginServiceList.map(pluginServiceName),
      ...profile.expansionList.map((e) => `VolumeExpansion.${expansionName(e)}`),
    ],
    controller: profile.controller.available ? profile.controller.list.map(controllerCapName) : profile.controller.reason,
    node: profile.node.available ? profile.node.list.map(nodeCapName) : profile.node.reason,
  };
}

async function runCheck(
  check: Check,
  options: ResolvedOptions,
  profile: DriverProfile,
  clients: ConformanceClients,
  dirs: RunDirs,
  sequence: number,
): Promise<CheckResult> {
  const started = performance.now();
  const base = { id: check.id, group: check.group, title: check.title, level: check.level, rule: check.rule };
  const skipReason = check.skipUnless?.(profile);
  if (skipReason !== undefined) {
    return { ...base, status: "skipped", durationMs: 0, message: skipReason, steps: [], notes: [], cleanupErrors: [] };
  }

  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new Error(`the check took longer than ${options.checkTimeoutMs} ms`)),
    options.checkTimeoutMs,
  );
  const run = new CheckRun(check, options, profile, clients, dirs, controller.signal, sequence);
  let status: CheckResult["status"] = "passed";
  let message: string | undefined;
  try {
    await Promise.race([
      check.run(run),
      new Promise<never>((_, reject) => {
        controller.signal.addEventListener("abort", () => reject(controller.signal.reason), { once: true });
      }),
    ]);
  } catch (err) {
    if (err instanceof CheckSkipped) {
      status = "skipped";
      message = err.message;
    } else {
      status = "failed";
      message = describeError(err);
    }
  } finally {
    clearTimeout(timer);
  }
  const cleanupErrors = await run.cleanup.runAll();
  if (cleanupErrors.length > 0 && status !== "failed") {
    status = "failed";
    message = `cleaning up after the check failed (see cleanup lines)`;
  }
  if (status === "failed" && check.level === "SHOULD" && options.lenient && cleanupErrors.length === 0) status = "warning";
  return {
    ...base,
    status,
    durationMs: performance.now() - started,
    ...(message !== undefined ? { message } : {}),
    steps: run.steps,
    notes: run.notes,
    cleanupErrors,
  };
}

function describeError(err: unknown): string {
  if (err instanceof CheckFailure) return err.message;
  if (err instanceof ConnectError) return `unexpected ${codeName(err.code)}: ${err.rawMessage}`;
  if (err instanceof Error) return `unexpected error: ${err.message}`;
  return `unexpected error: ${String(err)}`;
}

/** Probe until the plugin says it is ready (or stops answering false), as a CO does before using it. */
async function waitUntilReady(clients: ConformanceClients, options: ResolvedOptions): Promise<void> {
  const deadline = Date.now() + Math.min(options.rpcTimeoutMs, 60_000);
  for (;;) {
    const answer = await outcome(clients.identity.probe({}, { timeoutMs: options.rpcTimeoutMs }));
    if (!answer.ok || answer.value.ready !== false || Date.now() > deadline) return;
    await sleep(500);
  }
}

async function makeRunDirs(options: ResolvedOptions): Promise<RunDirs & { owned: string[] }> {
  const runId = randomBytes(3).toString("hex");
  const owned: string[] = [];
  async function under(base: string | undefined, kind: string): Promise<string> {
    if (base === undefined) {
      const dir = await mkdtemp(join(tmpdir(), `csi-conformance-${kind}-`));
      owned.push(dir);
      return dir;
    }
    const dir = join(base, `csi-conformance-${runId}`);
    await mkdir(dir, { recursive: true });
    owned.push(dir);
    return dir;
  }
  const staging = await under(options.stagingDir, "staging");
  const target = await under(options.targetDir, "target");
  return { staging, target, runId, owned };
}

async function removeRunDirs(dirs: { owned: string[] }): Promise<void> {
  for (const dir of dirs.owned) {
    // Never delete below a mount: that would delete a volume's contents.
    if ((await mountsUnder(dir)).length > 0) continue;
    await rm(dir, { recursive: true, force: true });
  }
}
