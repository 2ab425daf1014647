import { join } from "node:path";
import type { Config } from "../../config.js";
import { InvalidArgument } from "../../errors.js";
import type { Logger } from "../../log/logger.js";
import type { NodeBackend, NodeInfo, StringMap } from "../backend.js";
import { waitForDevice, type DeviceWait } from "./device.js";
import { MetadataClient } from "./metadata.js";
import { DEVICE_LINK_PREFIX, publishContextKey, volumeNameFrom } from "./names.js";

export interface DigitalOceanNodeOptions {
  readonly nodeId: string;
  readonly region: string;
  readonly volumeLimit: number;
  readonly driverName: string;
  /** --by-id-dir, /dev/disk/by-id on a droplet. */
  readonly byIdDir: string;
  readonly deviceWait: DeviceWait;
}

const DEVICE_TIMEOUT_MS = 10_000;

/**
 * The node side of DigitalOcean volumes: the droplet is the node (id = droplet
 * id, topology `region`), and a volume the controller attached appears as
 * `<by-id dir>/scsi-0DO_Volume_<name>`, the name coming from the publish_context.
 * Nothing to detach on the node: the controller's unpublish detaches.
 */
export class DigitalOceanNode implements NodeBackend {
  constructor(readonly options: DigitalOceanNodeOptions) {}

  nodeInfo(_signal: AbortSignal): Promise<NodeInfo> {
    return Promise.resolve({
      nodeId: this.options.nodeId,
      maxVolumesPerNode: this.options.volumeLimit,
      accessibleTopology: { region: this.options.region },
    });
  }

  async attachDevice(volumeId: string, publishContext: StringMap, volumeContext: StringMap, signal: AbortSignal): Promise<string> {
    const name = volumeNameFrom(this.options.driverName, publishContext, volumeContext);
    if (name === undefined) {
      throw InvalidArgument(
        "publish_context of volume %s has no %s: was it published by this driver's controller?",
        volumeId,
        publishContextKey(this.options.driverName),
      );
    }
    if (name.includes("/") || name.includes("\0")) throw InvalidArgument("invalid volume name %s in publish_context", JSON.stringify(name));
    const link = join(this.options.byIdDir, `${DEVICE_LINK_PREFIX}${name}`);
    await waitForDevice(link, volumeId, this.options.deviceWait, signal);
    return link;
  }

  async detachDevice(_volumeId: string, _devicePath: string | undefined, _signal: AbortSignal): Promise<void> {
    // The controller detaches the volume from the droplet; the link goes with it.
  }

  async close(): Promise<void> {
    // nothing held
  }
}

export async function openDigitalOceanNode(config: Config, log: Logger): Promise<NodeBackend> {
  const metadata = new MetadataClient(config.digitalocean.metadataUrl);
  const [nodeId, region] = await Promise.all([
    config.nodeId !== "" ? config.nodeId : metadata.dropletId(),
    config.digitalocean.region !== "" ? config.digitalocean.region : metadata.region(),
  ]);
  log.debug({ nodeId, region }, "DigitalOcean node backend ready");
  return new DigitalOceanNode({
    nodeId,
    region,
    volumeLimit: config.volumeLimit,
    driverName: config.driverName,
    byIdDir: config.digitalocean.byIdDir,
    deviceWait: { timeoutMs: DEVICE_TIMEOUT_MS, validate: config.digitalocean.validateAttachment },
  });
}
