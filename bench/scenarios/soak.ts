/**
 * Row 8: a soak. Many volume lives through one driver process (all-in-one,
 * local backend) while its RSS (/proc/PID/status) and open file descriptors
 * (/proc/PID/fd) are sampled; the verdict is "no growth trend" (soak-trend.ts).
 *
 * Every life goes through the controller: CreateVolume, ControllerPublishVolume,
 * ControllerUnpublishVolume, DeleteVolume. Every `nodeEvery`-th life also goes
 * through the node (NodeStageVolume with mkfs and mount, NodePublishVolume,
 * NodeUnpublishVolume, NodeUnstageVolume): a full node life costs ~130 ms of
 * host tools (row 6), so 10,000 of them would take the better part of an hour
 * while the controller life, where per-volume state lives, takes milliseconds.
 */
import { readdirSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { CsiClients } from "../../src/csi/client.js";
import { benchRoot, leftovers } from "../lib/cleanup.js";
import { startDriver, type RunningDriver } from "../lib/driver.js";
import { rssBytes } from "../lib/proc.js";
import { mountCapability } from "./local-life.js";
import { trendOf, type SoakSample, type Trend } from "./soak-trend.js";

const MiB = 1024 * 1024;

export interface SoakOptions {
  readonly lives: number;
  /** Every n-th life also stages and publishes on the node (0: none). */
  readonly nodeEvery: number;
  /** Lives in flight at once. */
  readonly concurrency: number;
  /** Samples over the run (at least). */
  readonly samples: number;
  readonly log: (line: string) => void;
}

export interface SoakResult {
  readonly lives: number;
  readonly nodeLives: number;
  readonly concurrency: number;
  readonly volumeBytes: number;
  readonly durationS: number;
  readonly livesPerS: number;
  readonly samples: readonly SoakSample[];
  readonly rss: Trend;
  readonly fds: Trend;
  readonly driverArgs: readonly string[];
  /** Set when the figures come from a separate run merged into a report (bench/run.ts --with-soak). */
  readonly run?: {
    readonly file: string;
    readonly date: string;
    readonly commit: string;
    readonly loadAverage: { readonly start: number; readonly end: number };
  };
}

/** Limits of the verdict: a leak of 1 KiB or one descriptor per ~1000 lives shows. */
export const RSS_LIMITS = { maxSlopePer1000: 1 * MiB, maxDelta: 10 * MiB };
export const FD_LIMITS = { maxSlopePer1000: 0.5, maxDelta: 2 };

const VOLUME_BYTES = 16 * MiB;
const NODE_ID = "n1";

function openFds(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function controllerLife(c: CsiClients, name: string, onNode: (volumeId: string, context: Record<string, string>) => Promise<void>) {
  const capability = mountCapability();
  const { volume } = await c.controller.createVolume({
    name,
    capacityRange: { requiredBytes: BigInt(VOLUME_BYTES) },
    volumeCapabilities: [capability],
  });
  const volumeId = volume?.volumeId ?? "";
  if (volumeId === "") throw new Error(`CreateVolume ${name} returned no volume`);
  const { publishContext } = await c.controller.controllerPublishVolume({
    volumeId,
    nodeId: NODE_ID,
    volumeCapability: capability,
    volumeContext: volume?.volumeContext,
  });
  await onNode(volumeId, publishContext);
  await c.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID });
  await c.controller.deleteVolume({ volumeId });
}

async function nodeLife(c: CsiClients, mnt: string, name: string, volumeId: string, publishContext: Record<string, string>) {
  const volumeCapability = mountCapability();
  const stagingTargetPath = join(mnt, `${name}-staging`);
  const targetPath = join(mnt, `${name}-target`);
  await c.node.nodeStageVolume({ volumeId, stagingTargetPath, volumeCapability, publishContext });
  await c.node.nodePublishVolume({ volumeId, stagingTargetPath, targetPath, volumeCapability, publishContext });
  await c.node.nodeUnpublishVolume({ volumeId, targetPath });
  await c.node.nodeUnstageVolume({ volumeId, stagingTargetPath });
}

export async function measureSoak(options: SoakOptions): Promise<SoakResult> {
  const dir = join(benchRoot(), "soak");
  const mnt = join(dir, "mnt");
  await mkdir(mnt, { recursive: true });
  const driverArgs = ["--backend", "local", "--mode", "all", "--data-dir", join(dir, "data"), "--node-id", NODE_ID, "--log-level", "warn"];
  let driver: RunningDriver | undefined;
  try {
    driver = await startDriver({ name: "soak/driver", args: driverArgs });
    const { pid, clients } = driver;
    const sampleEvery = Math.max(1, Math.floor(options.lives / options.samples));
    const samples: SoakSample[] = [];
    const started = performance.now();
    const sample = (lives: number) =>
      samples.push({ lives, rssBytes: rssBytes(pid), fds: openFds(pid), elapsedMs: performance.now() - started });
    sample(0);
    let next = 0;
    let done = 0;
    let nodeLives = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= options.lives) return;
        const name = `soak-${i}`;
        const onNode =
          options.nodeEvery > 0 && i % options.nodeEvery === 0
            ? (volumeId: string, context: Record<string, string>) => {
                nodeLives++;
                return nodeLife(clients, mnt, name, volumeId, context);
              }
            : async () => undefined;
        await controllerLife(clients, name, onNode);
        done++;
        if (done % sampleEvery === 0) sample(done);
        if (done % Math.max(1, Math.floor(options.lives / 10)) === 0) {
          const last = samples.at(-1);
          options.log(
            `  ${done.toLocaleString("en")} lives: RSS ${((last?.rssBytes ?? NaN) / MiB).toFixed(1)} MiB, ${last?.fds ?? "?"} fds, ${((performance.now() - started) / 1000).toFixed(0)} s`,
          );
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    if (samples.at(-1)?.lives !== done) sample(done);
    const durationS = (performance.now() - started) / 1000;
    const left = await leftovers(dir);
    if (left.mounts.length > 0 || left.loops.length > 0) {
      throw new Error(`the soak left mounts ${left.mounts.join(", ")} / loop devices ${left.loops.join(", ")} behind`);
    }
    return {
      lives: done,
      nodeLives,
      concurrency: options.concurrency,
      volumeBytes: VOLUME_BYTES,
      durationS,
      livesPerS: done / durationS,
      samples,
      rss: trendOf(samples, (s) => s.rssBytes, RSS_LIMITS),
      fds: trendOf(samples, (s) => s.fds, FD_LIMITS),
      driverArgs: driverArgs.map((a) => a.replace(benchRoot(), "<dir>")),
    };
  } finally {
    await driver?.stop();
  }
}
