/**
 * The real Identity, Controller and Node services, behind the real gRPC server
 * on a unix socket, over the in-memory backends: the driver's rules end to end
 * (request validation, capabilities, idempotency, sizes, in-flight locks, status
 * codes on the wire) with no root, loop devices or cloud API.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll } from "vitest";
import { parseCommandLine } from "../../src/cli/options.js";
import type { Config } from "../../src/config.js";
import type { CsiClients } from "../../src/csi/client.js";
import { controllerService } from "../../src/driver/controller.js";
import { identityService } from "../../src/driver/identity.js";
import { nodeService } from "../../src/driver/node.js";
import { Readiness } from "../../src/driver/readiness.js";
import { Controller, Identity, Node } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { serveRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MemoryControllerBackend, type MemoryControllerOptions } from "./memory-controller-backend.js";
import { MemoryNodeBackend, type MemoryNodeOptions } from "./memory-node-backend.js";

export const FAKE_DRIVER_NAME = "fake.csi.example.com";

export interface FakeDriverOptions {
  /** Extra command-line flags (e.g. --alpha-features all). */
  readonly flags?: readonly string[];
  readonly controller?: MemoryControllerOptions;
  readonly node?: MemoryNodeOptions;
}

export interface FakeDriver {
  readonly config: Config;
  readonly clients: CsiClients;
  readonly controllerBackend: MemoryControllerBackend;
  readonly nodeBackend: MemoryNodeBackend;
  stop(): Promise<void>;
}

/** Serve the services over fresh in-memory backends on `dir`/csi.sock; stop() closes everything. */
export async function startFakeDriver(dir: string, options: FakeDriverOptions = {}): Promise<FakeDriver> {
  const { config } = parseCommandLine(
    [
      "--mode",
      "all",
      "--backend",
      "local",
      "--endpoint",
      `unix://${join(dir, "csi.sock")}`,
      "--data-dir",
      join(dir, "data"),
      "--node-id",
      "node-1",
      "--driver-name",
      FAKE_DRIVER_NAME,
      "--kubelet-dir",
      join(dir, "kubelet"),
      ...(options.flags ?? []),
    ],
    {},
    "test",
  );
  const controllerBackend = new MemoryControllerBackend(options.controller);
  const nodeBackend = new MemoryNodeBackend(options.node);
  const readiness = new Readiness();
  if (controllerBackend.health) readiness.add(controllerBackend.health);
  if (nodeBackend.health) readiness.add(nodeBackend.health);
  const identity = identityService({
    name: config.driverName,
    version: config.version,
    readiness,
    features: {
      controllerService: true,
      accessibilityConstraints: true,
      onlineExpansion: true,
      snapshotMetadataService: false,
      groupControllerService: false,
    },
  });
  const controller = controllerService({ config, backend: controllerBackend, log: silentLogger });
  const node = nodeService({ config, backend: nodeBackend, log: silentLogger });
  const served = await serveRoutes(
    dir,
    silentLogger,
    (router) => {
      router.service(Identity, identity);
      router.service(Controller, controller);
      router.service(Node, node);
    },
    { shutdownTimeoutMs: 2_000 },
  );
  let stopped = false;
  return {
    config,
    clients: served.clients,
    controllerBackend,
    nodeBackend,
    async stop() {
      if (stopped) return;
      stopped = true;
      await served.stop();
      await controllerBackend.close();
      await nodeBackend.close();
    },
  };
}

/**
 * A fresh fake driver per call, in its own directory; each is stopped after
 * its test, so no test sees another's volumes or locks.
 */
export function useFakeDrivers(prefix: string): (options?: FakeDriverOptions) => Promise<FakeDriver> {
  let dir: string | undefined;
  let count = 0;
  const running: FakeDriver[] = [];
  beforeAll(async () => {
    dir = await makeTestDir(prefix);
  });
  afterEach(async () => {
    for (const driver of running.splice(0)) await driver.stop();
  });
  afterAll(async () => {
    if (dir !== undefined) await removeTestDir(dir);
  });
  return async (options = {}) => {
    if (dir === undefined) throw new Error("useFakeDrivers: start drivers inside tests");
    const own = join(dir, String(++count));
    await mkdir(own);
    const driver = await startFakeDriver(own, options);
    running.push(driver);
    return driver;
  };
}
