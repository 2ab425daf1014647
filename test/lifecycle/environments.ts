import { mkdir, readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Client } from "@connectrpc/connect";
import { volumesDir } from "../../src/backend/local/layout.js";
import { LOCAL_DRIVER_NAME } from "../../src/config.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import type { Controller, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { DoSimulator } from "../fixtures/do-simulator/simulator.js";
import { cleanHost, hostLeaks, mountsUnder } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { DriverProcess } from "./driver-process.js";

const MiB = 1024n ** 2n;
const GiB = 1024n ** 3n;

export const DRIVER_NAME = "dobs.csi.digitalocean.com";

/** A volume as the storage backend itself knows it (not as the driver reports it). */
export interface BackendVolume {
  readonly id: string;
  readonly name: string | undefined;
  readonly attachedTo: readonly string[];
}

/**
 * A backend with the driver running against it, as separate processes from
 * the built binary, and everything under one test directory (sockets, data,
 * the kubelet root). Tests drive it through the sidecar and kubelet replays.
 */
export interface LifecycleEnvironment {
  readonly name: "local" | "digitalocean";
  readonly dir: string;
  readonly kubeletRoot: string;
  readonly driverName: string;
  /** Sizes that suit the backend (DigitalOcean volumes are whole GiB, 1 GiB at least). */
  readonly smallBytes: bigint;
  readonly largeBytes: bigint;
  readonly controller: DriverProcess;
  /** The node plugin; the same process as the controller for an all-in-one deployment. */
  readonly node: DriverProcess;
  controllerClient(): Client<typeof Controller>;
  nodeClient(): Client<typeof Node>;
  /** Drop the connections and open new ones (after a driver restart). */
  reconnect(): void;
  backendVolumes(): Promise<BackendVolume[]>;
  backendSnapshotCount(): Promise<number>;
  /**
   * Make backend operations slower than `ms` (DigitalOcean: API latency and
   * slow actions; local: nothing to slow, returns false).
   */
  slowDown(ms: number): boolean;
  resetSpeed(): void;
  close(): Promise<void>;
}

abstract class BaseEnvironment {
  #controllerClients: CsiClients | undefined;
  #nodeClients: CsiClients | undefined;

  abstract readonly controller: DriverProcess;
  abstract readonly node: DriverProcess;

  constructor(readonly dir: string) {}

  get kubeletRoot(): string {
    return join(this.dir, "kubelet");
  }

  controllerClient(): Client<typeof Controller> {
    this.#controllerClients ??= connectCsi(this.controller.endpoint);
    return this.#controllerClients.controller;
  }

  nodeClient(): Client<typeof Node> {
    if (this.#nodeClients === undefined) {
      if (this.node === this.controller) {
        this.#controllerClients ??= connectCsi(this.controller.endpoint);
        this.#nodeClients = this.#controllerClients;
      } else {
        this.#nodeClients = connectCsi(this.node.endpoint);
      }
    }
    return this.#nodeClients.node;
  }

  reconnect(): void {
    this.#controllerClients?.close();
    if (this.#nodeClients !== this.#controllerClients) this.#nodeClients?.close();
    this.#controllerClients = undefined;
    this.#nodeClients = undefined;
  }

  protected async closeBase(): Promise<void> {
    this.reconnect();
    await this.node.close();
    await this.controller.close();
  }

  /** Unmount and detach whatever is left below the test directory (after a failure), then remove it. */
  protected async sweep(): Promise<string[]> {
    const leftovers = await hostLeaks(this.dir);
    await cleanHost(this.dir);
    if ((await mountsUnder(this.dir)).length === 0) await removeTestDir(this.dir);
    return leftovers;
  }
}

class LocalEnvironment extends BaseEnvironment implements LifecycleEnvironment {
  readonly name = "local" as const;
  readonly driverName = LOCAL_DRIVER_NAME;
  readonly smallBytes = 64n * MiB;
  readonly largeBytes = 128n * MiB;
  readonly controller: DriverProcess;
  readonly node: DriverProcess;
  readonly dataDir: string;

  constructor(dir: string, options: EnvironmentOptions) {
    super(dir);
    this.dataDir = options.dataDir ?? join(dir, "data");
    const nodeId = options.nodeId ?? "lifecycle-node";
    // The local backend is all-in-one: one process serves the controller and the node.
    this.controller = new DriverProcess(
      `local driver on ${nodeId}`,
      join(dir, "csi.sock"),
      ["--backend", "local", "--data-dir", this.dataDir, "--node-id", nodeId, "--log-level", "warn", ...(options.driverArgs ?? [])],
      join(dir, "driver.log"),
    );
    this.node = this.controller;
  }

  async backendVolumes(): Promise<BackendVolume[]> {
    // The backend's truth is the image files; the driver's answers are compared against it.
    let files: string[] = [];
    try {
      files = (await readdir(volumesDir(this.dataDir))).filter((f) => f.endsWith(".img"));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    const published = new Map<string, string[]>();
    let token = "";
    do {
      const page = await this.controllerClient().listVolumes({ startingToken: token }, { timeoutMs: 30_000 });
      for (const entry of page.entries) published.set(entry.volume?.volumeId ?? "", [...(entry.status?.publishedNodeIds ?? [])]);
      token = page.nextToken;
    } while (token !== "");
    return files.map((f) => {
      const id = f.slice(0, -".img".length);
      return { id, name: undefined, attachedTo: published.get(id) ?? [] };
    });
  }

  async backendSnapshotCount(): Promise<number> {
    try {
      return (await readdir(join(this.dataDir, "snapshots"))).filter((f) => f.endsWith(".img")).length;
    } catch {
      return 0;
    }
  }

  slowDown(): boolean {
    return false;
  }

  resetSpeed(): void {}

  async close(): Promise<void> {
    await this.closeBase();
    const leftovers = await this.sweep();
    if (leftovers.length > 0)
      throw new Error(`the local environment left host resources behind (now cleaned up):\n  ${leftovers.join("\n  ")}`);
  }
}

class DigitalOceanEnvironment extends BaseEnvironment implements LifecycleEnvironment {
  readonly name = "digitalocean" as const;
  readonly driverName = DRIVER_NAME;
  readonly smallBytes = GiB;
  readonly largeBytes = 2n * GiB;
  readonly controller: DriverProcess;
  readonly node: DriverProcess;

  constructor(
    dir: string,
    readonly sim: DoSimulator,
    extraArgs: readonly string[],
  ) {
    super(dir);
    // Deployed as the Go driver is: a controller Deployment (token + region) and a node DaemonSet (no token).
    this.controller = new DriverProcess(
      "digitalocean controller",
      join(dir, "controller.sock"),
      ["--token", "lifecycle-token", "--region", sim.region, "--url", sim.url, "--log-level", "warn", ...extraArgs],
      join(dir, "controller.log"),
    );
    this.node = new DriverProcess(
      "digitalocean node",
      join(dir, "node.sock"),
      ["--metadata-url", sim.metadataUrl, "--by-id-dir", join(dir, "by-id"), "--volume-limit", "200", "--log-level", "warn", ...extraArgs],
      join(dir, "node.log"),
    );
  }

  async backendVolumes(): Promise<BackendVolume[]> {
    return this.sim.volumes().map((v) => ({ id: v.id, name: v.name, attachedTo: v.dropletIds.map(String) }));
  }

  async backendSnapshotCount(): Promise<number> {
    return this.sim.snapshots().length;
  }

  slowDown(ms: number): boolean {
    this.sim.faults.latencyMs = ms;
    this.sim.faults.actionDelayMs = ms;
    return true;
  }

  resetSpeed(): void {
    this.sim.faults.latencyMs = 0;
    this.sim.faults.actionDelayMs = 0;
  }

  async close(): Promise<void> {
    let error: unknown;
    try {
      await this.closeBase();
    } catch (err) {
      error = err;
    }
    await this.sim.stop();
    const leftovers = await this.sweep();
    if (error !== undefined) throw error;
    if (leftovers.length > 0)
      throw new Error(`the DigitalOcean environment left host resources behind (now cleaned up):\n  ${leftovers.join("\n  ")}`);
  }
}

export interface EnvironmentOptions {
  /** Extra driver flags (e.g. --alpha-features). */
  readonly driverArgs?: readonly string[];
  /** Local backend: --node-id (default lifecycle-node). */
  readonly nodeId?: string;
  /** Local backend: --data-dir (default: data/ in the environment's directory). */
  readonly dataDir?: string;
  /** Local backend: the environment's directory (default: a fresh test directory). */
  readonly dir?: string;
}

export async function startLocalEnvironment(options: EnvironmentOptions = {}): Promise<LifecycleEnvironment> {
  const dir = options.dir ?? (await makeTestDir("lifecycle-local"));
  await mkdir(dir, { recursive: true });
  const env = new LocalEnvironment(dir, options);
  await mkdir(env.kubeletRoot, { recursive: true });
  try {
    await env.controller.start();
  } catch (err) {
    await env.close().catch(() => undefined);
    throw err;
  }
  return env;
}

export async function startDigitalOceanEnvironment(options: EnvironmentOptions = {}): Promise<LifecycleEnvironment> {
  const dir = await makeTestDir("lifecycle-do");
  const sim = await DoSimulator.start({ byIdDir: join(dir, "by-id"), dataDir: join(dir, "sim"), maxVolumesPerDroplet: 200 });
  const env = new DigitalOceanEnvironment(dir, sim, options.driverArgs ?? []);
  await mkdir(env.kubeletRoot, { recursive: true });
  try {
    await env.controller.start();
    await env.node.start();
  } catch (err) {
    await env.close().catch(() => undefined);
    throw err;
  }
  return env;
}
