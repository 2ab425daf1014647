import type { ServiceImpl } from "@connectrpc/connect";
import type { Controller } from "../gen/csi/v1/csi_pb.js";
import type { ControllerBackend } from "../backend/backend.js";
import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";

export interface ControllerServiceOptions {
  readonly config: Config;
  readonly backend: ControllerBackend;
  readonly log: Logger;
}

/** The CSI Controller service over a backend. */
export function controllerService(_options: ControllerServiceOptions): Partial<ServiceImpl<typeof Controller>> {
  return {};
}
