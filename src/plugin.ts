import type { Router, ServiceHandlers } from "./driver/service.js";
import { Controller, GroupController, Identity, Node, SnapshotMetadata } from "./gen/csi/v1/csi_pb.js";
import { servesController, servesNode, type Config } from "./config.js";
import type { Logger } from "./log/logger.js";
import { identityService } from "./driver/identity.js";
import { Readiness } from "./driver/readiness.js";
import { missingExecutables } from "./util/executables.js";
import { openControllerBackend, openNodeBackend } from "./backend/index.js";
import type { ControllerBackend } from "./backend/backend.js";
import { deploymentShape } from "./driver/deployment.js";
import { InFlight } from "./driver/inflight.js";
import { NO_METRICS, type DriverMetrics } from "./util/metrics.js";

/** The driver for one configuration: the services to serve, its health, and how to release what it holds. */
export interface Plugin {
  readonly readiness: Readiness;
  routes(router: Router): void;
  close(): Promise<void>;
}

/** Tools a node plugin cannot work without; xfs tools are checked when an xfs volume is staged. */
const NODE_TOOLS = ["mount", "umount", "blkid", "mkfs.ext4", "resize2fs"];

/**
 * Wire the layers for a configuration: backends (loaded lazily, so a node
 * plugin never loads controller code) behind the backend-agnostic services.
 * Backends report to `metrics` (nothing is measured without a debug server).
 */
export async function createPlugin(config: Config, log: Logger, metrics: DriverMetrics = NO_METRICS): Promise<Plugin> {
  const readiness = new Readiness();
  const closers: (() => Promise<void>)[] = [];

  if (servesNode(config.mode)) {
    readiness.add({
      name: "node host tools",
      async check() {
        const missing = await missingExecutables(NODE_TOOLS);
        if (missing.length > 0) {
          throw new Error(`missing ${missing.join(", ")}; install e2fsprogs and util-linux/mount on the node (or use the driver's image)`);
        }
        return "ready";
      },
    });
  }

  const shape = deploymentShape(config);
  let controller: ServiceHandlers<typeof Controller> = {};
  let controllerBackend: ControllerBackend | undefined;
  const controllerInflight = new InFlight();
  let node: ServiceHandlers<typeof Node> = {};
  let snapshotMetadata: ServiceHandlers<typeof SnapshotMetadata> = {};
  // Alpha, and only the local backend keeps snapshot images whose blocks it can map.
  const offersSnapshotMetadata = config.alpha.has("snapshot-metadata") && config.backend === "local";
  try {
    if (servesController(config.mode)) {
      const backend = await openControllerBackend(config, log, metrics);
      controllerBackend = backend;
      closers.push(() => backend.close());
      if (backend.health) readiness.add(backend.health);
      // Loaded on demand: a node plugin never loads controller code, and vice versa.
      const { controllerService } = await import("./driver/controller.js");
      controller = controllerService({ config, backend, log, inflight: controllerInflight });
      if (offersSnapshotMetadata && backend.snapshotMetadata) {
        const { snapshotMetadataService } = await import("./driver/snapshot-metadata.js");
        snapshotMetadata = snapshotMetadataService(backend.snapshotMetadata);
        if (backend.snapshotMetadata.health) readiness.add(backend.snapshotMetadata.health);
      }
    }
    if (servesNode(config.mode)) {
      const backend = await openNodeBackend(config, log);
      closers.push(() => backend.close());
      if (backend.health) readiness.add(backend.health);
      const { nodeService } = await import("./driver/node.js");
      // With --node-deployment the node grows its own pool's images (NodeExpandVolume), under the controller's keys.
      const storage =
        shape.nodeGrowsStorage && controllerBackend ? { backend: controllerBackend, inflight: controllerInflight } : undefined;
      node = nodeService({ config, backend, log, ...(storage ? { storage } : {}) });
    }
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }

  const identity = identityService({
    name: config.driverName,
    version: config.version,
    readiness,
    features: {
      // The plugin as a whole has a Controller service (both backends do), and the
      // spec requires every instance to report the same capabilities whatever it
      // serves: a node plugin says so too, as the Go driver's does (Nomad reads it
      // from node plugins to decide whether volumes need ControllerPublish).
      controllerService: true,
      accessibilityConstraints: true,
      onlineExpansion: true,
      snapshotMetadataService: offersSnapshotMetadata,
    },
  });
  log.debug({ mode: config.mode, backend: config.backend }, "plugin assembled");

  return {
    readiness,
    routes(router) {
      router.service(Identity, identity);
      // Services not (yet) provided answer UNIMPLEMENTED for each of their methods.
      router.service(Controller, controller);
      router.service(Node, node);
      router.service(GroupController, {});
      router.service(SnapshotMetadata, snapshotMetadata);
    },
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}
