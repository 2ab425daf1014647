import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";
import type { ControllerBackend, NodeBackend } from "./backend.js";
import { NO_METRICS, type DriverMetrics } from "../util/metrics.js";

// Each backend is imported on demand, so a process loads only the one it
// serves, and a node plugin never loads controller code.

export async function openControllerBackend(config: Config, log: Logger, metrics: DriverMetrics = NO_METRICS): Promise<ControllerBackend> {
  switch (config.backend) {
    case "local":
      return (await import("./local/controller.js")).openLocalController(config, log, metrics);
    case "digitalocean":
      return (await import("./digitalocean/controller.js")).openDigitalOceanController(config, log, metrics);
  }
}

export async function openNodeBackend(config: Config, log: Logger): Promise<NodeBackend> {
  switch (config.backend) {
    case "local":
      return (await import("./local/node.js")).openLocalNode(config, log);
    case "digitalocean":
      return (await import("./digitalocean/node.js")).openDigitalOceanNode(config, log);
  }
}
