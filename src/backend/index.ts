import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";
import type { ControllerBackend, NodeBackend } from "./backend.js";

// Each backend is imported on demand, so a process loads only the one it
// serves, and a node plugin never loads controller code.

export async function openControllerBackend(config: Config, log: Logger): Promise<ControllerBackend> {
  switch (config.backend) {
    case "local":
      return (await import("./local/controller.js")).openLocalController(config, log);
    case "digitalocean":
      return (await import("./digitalocean/controller.js")).openDigitalOceanController(config, log);
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
