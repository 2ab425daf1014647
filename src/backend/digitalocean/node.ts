import type { Config } from "../../config.js";
import type { Logger } from "../../log/logger.js";
import type { NodeBackend } from "../backend.js";

export async function openDigitalOceanNode(_config: Config, _log: Logger): Promise<NodeBackend> {
  throw new Error("this backend is not available in this build");
}
