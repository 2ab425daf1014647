import { execFile } from "node:child_process";
import { mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { parseCommandLine } from "../../src/cli/options.js";
import { connectCsi, type CsiClients } from "../../src/csi/client.js";
import { CsiServer } from "../../src/csi/server.js";
import { Node, VolumeCapabilitySchema, VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { createPlugin, type Plugin } from "../../src/plugin.js";
import { openNodeBackend } from "../../src/backend/index.js";
import { nodeService } from "../../src/driver/node.js";
import { volumeImagePath } from "../../src/backend/local/layout.js";
import type { Config } from "../../src/config.js";
import { cleanHost, hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

export const execFileAsync = promisify(execFile);
export const MiB = 1024 * 1024;

/** Run a host command in a test; rejects with its stderr. */
export async function sh(command: string, ...args: string[]): Promise<string> {
  const { stdout } = await execFileAsync(command, args, {
    env: { ...process.env, LC_ALL: "C", PATH: `${process.env.PATH ?? ""}:/usr/sbin:/sbin` },
  });
  return stdout;
}

export interface NodeHarness {
  readonly dir: string;
  readonly dataDir: string;
  readonly config: Config;
  readonly node: Client<typeof Node>;
  readonly clients: CsiClients;
  /** Create a sparse image file for a local volume id; returns its path. */
  createVolume(volumeId: string, sizeBytes: number): Promise<string>;
  /** A path under the harness directory (parents are created). */
  path(...parts: string[]): Promise<string>;
  /** Safety net: unmount everything below the directory and detach its loop devices. */
  cleanupHost(): Promise<void>;
  /** Mounts and loop devices still present below the directory. */
  leftovers(): Promise<string[]>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  readonly alpha?: readonly string[];
  /** Serve nodeService directly with this kubelet directory (instead of createPlugin's default). */
  readonly kubeletDir?: string;
}

/**
 * One harness for every test of a file: started before the first test, stopped
 * after the last; after each test it asserts that the test left nothing mounted
 * or attached (and cleans up either way, so the next test starts clean).
 */
export function useNodeHarness(prefix: string, options: HarnessOptions = {}): NodeHarness {
  let started: NodeHarness | undefined;
  beforeAll(async () => {
    started = await startNode(prefix, options);
  });
  afterEach(async () => {
    if (!started) return;
    const left = await started.leftovers();
    await started.cleanupHost();
    expect(left).toEqual([]);
  });
  afterAll(async () => {
    await started?.stop();
  });
  return new Proxy({} as NodeHarness, {
    get(_target, property) {
      if (!started) throw new Error(`the ${prefix} harness is used before it started`);
      const value: unknown = Reflect.get(started, property);
      return typeof value === "function" ? value.bind(started) : value;
    },
  });
}

/** A node-mode local-backend plugin behind the real gRPC stack, on a unix socket under a fresh test directory. */
export async function startNode(prefix: string, options: HarnessOptions = {}): Promise<NodeHarness> {
  const dir = await makeTestDir(prefix);
  const dataDir = join(dir, "data");
  await mkdir(join(dataDir, "volumes"), { recursive: true });
  const socket = join(dir, "csi.sock");
  const argv = ["--backend", "local", "--mode", "node", "--data-dir", dataDir, "--endpoint", `unix://${socket}`, "--node-id", "test-node"];
  if (options.alpha) argv.push("--alpha-features", options.alpha.join(","));
  const { config } = parseCommandLine(argv, {}, "test");
  const log = silentLogger;

  let plugin: Plugin | undefined;
  let closeBackend: (() => Promise<void>) | undefined;
  let routes: Plugin["routes"];
  if (options.kubeletDir === undefined) {
    plugin = await createPlugin(config, log);
    routes = (router) => plugin?.routes(router);
  } else {
    const backend = await openNodeBackend(config, log);
    closeBackend = () => backend.close();
    const service = nodeService({ config, backend, log, kubeletDir: options.kubeletDir });
    routes = (router) => router.service(Node, service);
  }
  const server = await CsiServer.start({
    endpoint: { kind: "unix", path: socket },
    socketMode: 0o660,
    log,
    routes,
    shutdownTimeoutMs: 5_000,
  });
  const clients = connectCsi(`unix://${socket}`);

  const harness: NodeHarness = {
    dir,
    dataDir,
    config,
    node: clients.node,
    clients,
    async createVolume(volumeId, sizeBytes) {
      const file = volumeImagePath(dataDir, volumeId);
      const handle = await open(file, "w");
      try {
        await handle.truncate(sizeBytes);
      } finally {
        await handle.close();
      }
      return file;
    },
    async path(...parts) {
      const path = join(dir, ...parts);
      await mkdir(join(path, ".."), { recursive: true });
      return path;
    },
    cleanupHost: () => cleanHost(dir),
    leftovers: () => hostLeaks(dir),
    async stop() {
      clients.close();
      await server.shutdown();
      await plugin?.close();
      await closeBackend?.();
      await harness.cleanupHost();
      await removeTestDir(dir);
    },
  };
  return harness;
}

type CapabilityInit = MessageInitShape<typeof VolumeCapabilitySchema>;

export function mountCapability(fsType = "", mountFlags: string[] = [], mode: Mode = Mode.SINGLE_NODE_WRITER): CapabilityInit {
  return { accessType: { case: "mount", value: { fsType, mountFlags } }, accessMode: { mode } };
}

export function blockCapability(mode: Mode = Mode.SINGLE_NODE_WRITER): CapabilityInit {
  return { accessType: { case: "block", value: {} }, accessMode: { mode } };
}

/** A capability message (for comparing or building requests by hand). */
export function capabilityMessage(init: CapabilityInit) {
  return create(VolumeCapabilitySchema, init);
}

export { expectCode } from "../support/expect-code.js";

/** df's view of a mount point, in bytes. */
export async function df(path: string): Promise<{ size: number; used: number; avail: number }> {
  const out = await sh("df", "-B1", "--output=size,used,avail", path);
  const [size, used, avail] = (out.trim().split("\n")[1] ?? "").trim().split(/\s+/).map(Number);
  return { size: size ?? NaN, used: used ?? NaN, avail: avail ?? NaN };
}

/** df -i: inodes total/used/available. */
export async function dfInodes(path: string): Promise<{ total: number; used: number; avail: number }> {
  const out = await sh("df", "--output=itotal,iused,iavail", path);
  const [total, used, avail] = (out.trim().split("\n")[1] ?? "").trim().split(/\s+/).map(Number);
  return { total: total ?? NaN, used: used ?? NaN, avail: avail ?? NaN };
}

/** Mount-point entry of a path from /proc/self/mountinfo, or undefined. */
export async function mountEntryAt(path: string) {
  const { readMountInfo, mountAt } = await import("../../src/mounter/mountinfo.js");
  return mountAt(await readMountInfo(), path);
}
