/**
 * Row 6: one 1 GiB ext4 volume's life through the driver (all-in-one, local
 * backend) against bench/local-life.sh doing the same host tool calls,
 * interleaved (ABBA order) so drift in the machine's load hits both alike.
 */
import { execFile } from "node:child_process";
import { mkdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import type { CsiClients } from "../../src/csi/client.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { VolumeCapability_AccessMode_Mode as AccessMode, type VolumeCapabilitySchema } from "../../src/gen/csi/v1/csi_pb.js";
import { mkfsCommand } from "../../src/mounter/format.js";
import { benchRoot } from "../lib/cleanup.js";
import { DRIVER_PATH, startDriver, type RunningDriver } from "../lib/driver.js";
import { leftovers } from "../lib/cleanup.js";

const execFileAsync = promisify(execFile);
const GiB = 1024 ** 3;
export const LIFE_SCRIPT = "bench/local-life.sh";

export interface LocalLifeOptions {
  readonly runs: number;
  readonly log: (line: string) => void;
}

/** Milliseconds per step of one driver life (client side). */
export type LifeSteps = Record<string, number>;

export interface LocalLifeResult {
  readonly driverMs: readonly number[];
  readonly scriptMs: readonly number[];
  /** driver / script of each interleaved pair. */
  readonly pairRatios: readonly number[];
  readonly driverSteps: readonly LifeSteps[];
  /** mkfs.ext4 options the script was given (the driver's own). */
  readonly mkfsOptions: string;
  /** The script run one phase at a time (not part of the ratio). */
  readonly scriptPhases: readonly LifeSteps[];
  readonly driverArgs: readonly string[];
}

export function mountCapability(): MessageInitShape<typeof VolumeCapabilitySchema> {
  return { accessType: { case: "mount", value: { fsType: "ext4", mountFlags: [] } }, accessMode: { mode: AccessMode.SINGLE_NODE_WRITER } };
}

export async function driverLife(c: CsiClients, mnt: string, name: string): Promise<LifeSteps> {
  const steps: LifeSteps = {};
  const step = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    const value = await f();
    steps[label] = performance.now() - t0;
    return value;
  };
  const capability = mountCapability();
  const t0 = performance.now();
  const { volume } = await step("CreateVolume", () =>
    c.controller.createVolume({
      name,
      capacityRange: { requiredBytes: BigInt(GiB), limitBytes: BigInt(GiB) },
      volumeCapabilities: [capability],
    }),
  );
  const volumeId = volume?.volumeId ?? "";
  if (volumeId === "") throw new Error("CreateVolume returned no volume");
  const { publishContext } = await step("ControllerPublishVolume", () =>
    c.controller.controllerPublishVolume({ volumeId, nodeId: "n1", volumeCapability: capability, volumeContext: volume?.volumeContext }),
  );
  const stagingTargetPath = join(mnt, `${name}-staging`);
  const targetPath = join(mnt, `${name}-target`);
  await step("NodeStageVolume", () =>
    c.node.nodeStageVolume({
      volumeId,
      stagingTargetPath,
      volumeCapability: capability,
      publishContext,
      volumeContext: volume?.volumeContext,
    }),
  );
  await step("NodePublishVolume", () =>
    c.node.nodePublishVolume({
      volumeId,
      stagingTargetPath,
      targetPath,
      volumeCapability: capability,
      publishContext,
      volumeContext: volume?.volumeContext,
    }),
  );
  await step("NodeUnpublishVolume", () => c.node.nodeUnpublishVolume({ volumeId, targetPath }));
  await step("NodeUnstageVolume", () => c.node.nodeUnstageVolume({ volumeId, stagingTargetPath }));
  await step("ControllerUnpublishVolume", () => c.controller.controllerUnpublishVolume({ volumeId, nodeId: "n1" }));
  await step("DeleteVolume", () => c.controller.deleteVolume({ volumeId }));
  steps.total = performance.now() - t0;
  return steps;
}

/** The driver's own mkfs.ext4 options (everything before "--" in mkfsCommand), handed to the script. */
export const MKFS_EXT4_OPTIONS = (() => {
  const { args } = mkfsCommand("ext4", "/dev/null");
  const end = args.indexOf("--");
  return (end >= 0 ? args.slice(0, end) : args.slice(0, -1)).join(" ");
})();

export async function scriptLife(work: string, name: string, phase = "all"): Promise<number> {
  const t0 = performance.now();
  await execFileAsync(resolve(LIFE_SCRIPT), [work, name, phase], { env: { ...process.env, PATH: DRIVER_PATH, MKFS_EXT4_OPTIONS } });
  return performance.now() - t0;
}

export const SCRIPT_PHASES = ["create", "stage", "publish", "unpublish", "unstage", "delete"] as const;

/** The driver's steps that do each phase's host work (the controller publish/unpublish only record metadata). */
export const PHASE_STEPS: Record<(typeof SCRIPT_PHASES)[number], readonly string[]> = {
  create: ["CreateVolume"],
  stage: ["ControllerPublishVolume", "NodeStageVolume"],
  publish: ["NodePublishVolume"],
  unpublish: ["NodeUnpublishVolume"],
  unstage: ["NodeUnstageVolume", "ControllerUnpublishVolume"],
  delete: ["DeleteVolume"],
};

/** The script's life one phase per invocation (each pays a shell start), for the per-step comparison. */
async function phasedScriptLife(work: string, name: string): Promise<LifeSteps> {
  const steps: LifeSteps = {};
  for (const phase of SCRIPT_PHASES) steps[phase] = await scriptLife(work, name, phase);
  return steps;
}

export async function measureLocalLife(options: LocalLifeOptions): Promise<LocalLifeResult> {
  const dir = join(benchRoot(), "local-life");
  const mnt = join(dir, "mnt");
  const work = join(dir, "script");
  await mkdir(mnt, { recursive: true });
  await mkdir(work, { recursive: true });
  const driverArgs = ["--backend", "local", "--mode", "all", "--data-dir", join(dir, "data"), "--node-id", "n1"];
  let driver: RunningDriver | undefined;
  try {
    driver = await startDriver({ name: "local-life/driver", args: driverArgs });
    // Warm-up (not counted): the first life pays for loading the node code and for cold caches.
    await driverLife(driver.clients, mnt, "warmup");
    await scriptLife(work, "warmup");
    const driverMs: number[] = [];
    const scriptMs: number[] = [];
    const pairRatios: number[] = [];
    const driverSteps: LifeSteps[] = [];
    const scriptPhases: LifeSteps[] = [];
    for (let i = 0; i < options.runs; i++) {
      const name = `life-${i}`;
      let d: LifeSteps;
      let s: number;
      // ABBA: alternate which goes first.
      if (i % 2 === 0) {
        d = await driverLife(driver.clients, mnt, name);
        s = await scriptLife(work, name);
      } else {
        s = await scriptLife(work, name);
        d = await driverLife(driver.clients, mnt, name);
      }
      const total = d.total ?? NaN;
      driverSteps.push(d);
      driverMs.push(total);
      scriptMs.push(s);
      pairRatios.push(total / s);
      scriptPhases.push(await phasedScriptLife(work, `${name}-phased`));
      options.log(`  life ${i + 1}: driver ${total.toFixed(0)} ms, script ${s.toFixed(0)} ms (x${(total / s).toFixed(2)})`);
    }
    const left = await leftovers(dir);
    if (left.mounts.length > 0 || left.loops.length > 0) {
      throw new Error(`volume lives left mounts ${left.mounts.join(", ")} / loop devices ${left.loops.join(", ")} behind`);
    }
    return {
      driverMs,
      scriptMs,
      pairRatios,
      driverSteps,
      mkfsOptions: MKFS_EXT4_OPTIONS,
      scriptPhases,
      driverArgs: driverArgs.map((a) => a.replace(benchRoot(), "<dir>")),
    };
  } finally {
    await driver?.stop();
  }
}
