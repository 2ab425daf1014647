import type { ServiceHandlers } from "./service.js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Node, NodeServiceCapability_RPC_Type as Rpc, type NodeServiceCapabilitySchema } from "../gen/csi/v1/csi_pb.js";
import type { NodeBackend } from "../backend/backend.js";
import type { NodeOwnedStorage } from "./volume-growth.js";
import type { Config } from "../config.js";
import type { Logger } from "../log/logger.js";
import { InFlight } from "./inflight.js";
import { DEFAULT_KUBELET_DIR } from "../mounter/propagation.js";
import { answeringLongNames, checkedPath } from "./node-request.js";
import { stageVolume, unstageVolume } from "./node-stage.js";
import { publishVolume, unpublishVolume } from "./node-publish.js";
import { expandVolume } from "./node-expand.js";
import { volumeStats } from "./node-stats.js";
import type { NodeEnv } from "./node-volume.js";

export interface NodeServiceOptions {
  readonly config: Config;
  readonly backend: NodeBackend;
  readonly log: Logger;
  /**
   * Staging and target paths below this directory must be on a shared mount
   * (mount propagation); default /var/lib/kubelet.
   */
  readonly kubeletDir?: string;
  /**
   * With --node-deployment, this node's own pool: NodeExpandVolume grows the
   * volume's storage there first (deployment.ts decides).
   */
  readonly storage?: NodeOwnedStorage;
}

type NodeCapabilityInit = MessageInitShape<typeof NodeServiceCapabilitySchema>;

/** The node capabilities for a configuration; alpha ones only when switched on. */
export function nodeCapabilities(config: Pick<Config, "alpha">): NodeCapabilityInit[] {
  const types = [Rpc.STAGE_UNSTAGE_VOLUME, Rpc.GET_VOLUME_STATS, Rpc.EXPAND_VOLUME];
  if (config.alpha.has("volume-condition")) types.push(Rpc.VOLUME_CONDITION);
  if (config.alpha.has("single-node-multi-writer")) types.push(Rpc.SINGLE_NODE_MULTI_WRITER);
  return types.map((type) => ({ type: { case: "rpc", value: { type } } }));
}

/**
 * The CSI Node service over a backend. The backend only finds (and, for the
 * local backend, attaches) a volume's block device; formatting, mounting,
 * binding, resizing and stats are the same for every backend (src/mounter).
 * Operations on one volume or one path are serialised: a concurrent one is
 * answered ABORTED.
 */
export function nodeService(options: NodeServiceOptions): ServiceHandlers<typeof Node> {
  const { config, backend } = options;
  const env: NodeEnv = {
    backend,
    inflight: new InFlight(),
    kubeletDir: checkedPath(options.kubeletDir ?? options.config.kubeletDir ?? DEFAULT_KUBELET_DIR, "kubelet directory"),
    volumeCondition: config.alpha.has("volume-condition"),
    singleNodeMultiWriter: config.alpha.has("single-node-multi-writer"),
    ...(options.storage ? { storage: options.storage } : {}),
  };
  const capabilities = nodeCapabilities(config);

  return {
    async nodeStageVolume(req, ctx) {
      await backend.requireOwnVolume?.(req.volumeId, ctx.signal);
      await answeringLongNames(() => stageVolume(env, req, ctx.signal, ctx.log));
      return {};
    },
    async nodeUnstageVolume(req, ctx) {
      await backend.requireOwnVolume?.(req.volumeId, ctx.signal);
      await answeringLongNames(() => unstageVolume(env, req, ctx.signal, ctx.log));
      return {};
    },
    async nodePublishVolume(req, ctx) {
      await backend.requireOwnVolume?.(req.volumeId, ctx.signal);
      await answeringLongNames(() => publishVolume(env, req, ctx.signal, ctx.log));
      return {};
    },
    async nodeUnpublishVolume(req, ctx) {
      await backend.requireOwnVolume?.(req.volumeId, ctx.signal);
      await answeringLongNames(() => unpublishVolume(env, req, ctx.signal, ctx.log));
      return {};
    },
    async nodeGetVolumeStats(req, ctx) {
      await backend.requireOwnVolume?.(req.volumeId, ctx.signal);
      return answeringLongNames(() => volumeStats(env, req, ctx.signal));
    },
    async nodeExpandVolume(req, ctx) {
      await backend.requireOwnVolume?.(req.volumeId, ctx.signal);
      return answeringLongNames(() => expandVolume(env, req, ctx.signal, ctx.log));
    },
    nodeGetCapabilities: () => ({ capabilities }),
    async nodeGetInfo(_req, ctx) {
      const info = await backend.nodeInfo(ctx.signal);
      const segments = { ...info.accessibleTopology };
      return {
        nodeId: info.nodeId,
        maxVolumesPerNode: BigInt(info.maxVolumesPerNode),
        accessibleTopology: Object.keys(segments).length > 0 ? { segments } : undefined,
      };
    },
  };
}
