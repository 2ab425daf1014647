import type { Config } from "../../config.js";
import type { Logger } from "../../log/logger.js";
import type { ControllerBackend } from "../backend.js";

export async function openDigitalOceanController(_config: Config, _log: Logger): Promise<ControllerBackend> {
  throw new Error("this backend is not available in this build");
}
