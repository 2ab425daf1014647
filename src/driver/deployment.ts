import type { Config } from "../config.js";

/**
 * The one switch between the two ways the plugin is deployed, and the only
 * place that decides what differs between them:
 *
 * - one controller for the cluster (DigitalOcean; the local backend on one
 *   machine, as `npm start` runs it): the controller attaches volumes
 *   (ControllerPublishVolume) and grows them (ControllerExpandVolume), the node
 *   grows the filesystem;
 * - one instance per node (`--node-deployment`, local backend): each instance
 *   owns its node's pool and nothing attaches a volume across nodes, so there
 *   is no controller publish (CSIDriver attachRequired: false) and no
 *   controller expansion (Kubernetes has no per-node resizer): NodeExpandVolume
 *   grows the image, the loop device and the filesystem, online. Nor is there
 *   ControllerModifyVolume: Kubernetes sends it from one cluster-wide resizer,
 *   which cannot reach the instance of the volume's node; the parameter is a
 *   StorageClass parameter there.
 *
 * Everything else (create, delete, snapshots, clones, listings, capacity, node
 * EXPAND_VOLUME, plugin ONLINE expansion) is the same in both.
 */
export interface DeploymentShape {
  /**
   * PUBLISH_UNPUBLISH_VOLUME, with PUBLISH_READONLY and LIST_VOLUMES_PUBLISHED_NODES,
   * which describe ControllerPublishVolume and mean nothing without it.
   */
  readonly controllerPublish: boolean;
  /** EXPAND_VOLUME on the controller. */
  readonly controllerExpansion: boolean;
  /** MODIFY_VOLUME on the controller. */
  readonly controllerModification: boolean;
  /** NodeExpandVolume grows the volume's storage itself, not only its filesystem. */
  readonly nodeGrowsStorage: boolean;
}

export function deploymentShape(config: Pick<Config, "nodeDeployment">): DeploymentShape {
  const perNode = config.nodeDeployment;
  return { controllerPublish: !perNode, controllerExpansion: !perNode, controllerModification: !perNode, nodeGrowsStorage: perNode };
}
