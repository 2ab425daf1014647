import type { ServiceImpl } from "@connectrpc/connect";
import type { Node } from "../gen/csi/v1/csi_pb.js";
import type { NodeBackend } from "../backend/backend.js";
import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";

export interface NodeServiceOptions {
  readonly config: Config;
  readonly backend: NodeBackend;
  readonly log: Logger;
}

/** The CSI Node service over a backend. */
export function nodeService(_options: NodeServiceOptions): Partial<ServiceImpl<typeof Node>> {
  return {};
}
