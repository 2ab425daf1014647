/**
 * Row 9: DigitalOcean volume modification (ControllerModifyVolume, mutable
 * parameter `tags`) through the built driver in controller mode against the
 * project's simulator, counting the API requests of each kind of change with
 * the simulator's per-route counters. The target is what the requests must be
 * at most: one GET of the volume, one request per tag added or removed, and
 * two more the first time a tag is used in the account (the tag request's 404,
 * then creating the tag).
 */
import { performance } from "node:perf_hooks";
import { startDriver, type RunningDriver } from "../lib/driver.js";
import { controllerArgs, simCounts, type Simulator, startSimulator } from "./do-life.js";
import { mountCapability } from "./local-life.js";
import type { SimulatorOptions } from "../lib/protocol.js";

const GiB = 1024 ** 3;

/** One kind of change, applied to every volume of the run in turn. */
export interface ModifyStep {
  readonly label: string;
  readonly tags: string;
  /** Tags added and removed on each volume, and tags new to the account (once per run). */
  readonly added: number;
  readonly removed: number;
  readonly newTags: number;
}

export interface ModifyStepResult extends ModifyStep {
  readonly volumes: number;
  readonly apiRequests: number;
  readonly requestsPerModification: number;
  /** 1 + added + removed per modification, plus 2 per tag new to the account. */
  readonly bound: number;
  readonly routes: Record<string, number>;
  readonly failed: number;
  readonly wallMs: number;
}

export interface DoModifyResult {
  readonly volumes: number;
  readonly steps: readonly ModifyStepResult[];
  readonly driverArgs: readonly string[];
}

/** The changes measured, in order, on volumes created with the tag "team-a". */
export const MODIFY_STEPS: readonly ModifyStep[] = [
  { label: "add two tags (new to the account)", tags: "team-a,cost-1,env-prod", added: 2, removed: 0, newTags: 2 },
  { label: "replace one tag (new to the account)", tags: "team-b,cost-1,env-prod", added: 1, removed: 1, newTags: 1 },
  { label: "replace one tag (tag exists)", tags: "team-a,cost-1,env-prod", added: 1, removed: 1, newTags: 0 },
  { label: "the same tags again", tags: "team-a,cost-1,env-prod", added: 0, removed: 0, newTags: 0 },
  { label: "remove every tag", tags: "", added: 0, removed: 3, newTags: 0 },
];

async function step(driver: RunningDriver, sim: Simulator, volumeIds: readonly string[], s: ModifyStep): Promise<ModifyStepResult> {
  await sim.request({ kind: "reset" });
  let failed = 0;
  const started = performance.now();
  for (const volumeId of volumeIds) {
    await driver.clients.controller.controllerModifyVolume({ volumeId, mutableParameters: { tags: s.tags } }).catch(() => {
      failed++;
    });
  }
  const wallMs = performance.now() - started;
  const counts = await simCounts(sim);
  const bound = (1 + s.added + s.removed) * volumeIds.length + 2 * s.newTags;
  return {
    ...s,
    volumes: volumeIds.length,
    apiRequests: counts.apiRequests,
    requestsPerModification: counts.apiRequests / volumeIds.length,
    bound: bound / volumeIds.length,
    routes: counts.routes,
    failed,
    wallMs,
  };
}

export async function measureDoModify(simulator: SimulatorOptions, volumes: number, log: (line: string) => void): Promise<DoModifyResult> {
  const { sim, url } = await startSimulator(simulator);
  let driver: RunningDriver | undefined;
  try {
    const args = controllerArgs(url);
    driver = await startDriver({ name: "do-modify", args });
    const volumeIds: string[] = [];
    for (let i = 0; i < volumes; i++) {
      const { volume } = await driver.clients.controller.createVolume({
        name: `pvc-modify-${i}`,
        capacityRange: { requiredBytes: BigInt(GiB) },
        volumeCapabilities: [mountCapability()],
        mutableParameters: { tags: "team-a" },
      });
      volumeIds.push(volume?.volumeId ?? "");
    }
    const steps: ModifyStepResult[] = [];
    for (const s of MODIFY_STEPS) {
      const result = await step(driver, sim, volumeIds, s);
      steps.push(result);
      log(
        `  ${s.label}: ${result.requestsPerModification.toFixed(2)} requests/modification (bound ${result.bound.toFixed(2)}), ${result.failed} failed`,
      );
    }
    for (const volumeId of volumeIds) await driver.clients.controller.deleteVolume({ volumeId });
    return { volumes, steps, driverArgs: args.map((a) => (a === url ? "http://127.0.0.1:<port>/" : a)) };
  } finally {
    await driver?.stop();
    await sim.stop();
  }
}
