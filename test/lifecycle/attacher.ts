import { createHash } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import type { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { capabilityFor, type CapabilityInit } from "./capability.js";
import type { PersistentVolume, VolumeAttachment } from "./objects.js";
import { DEFAULT_RETRY, withRetries, type RetryPolicy, type RetryStats } from "./retry.js";

/** The VolumeAttachment name the kubelet and the attach/detach controller use: csi-<sha256(volumeHandle+driver+node)>. */
export function attachmentName(volumeHandle: string, driverName: string, nodeName: string): string {
  return `csi-${createHash("sha256").update(`${volumeHandle}${driverName}${nodeName}`).digest("hex")}`;
}

/** The capability the attacher and the kubelet derive from a PV (its first access mode, fsType and mount options). */
export function pvCapability(pv: PersistentVolume, singleNodeMultiWriter: boolean): CapabilityInit {
  return capabilityFor(pv.volumeMode, pv.accessModes[0] ?? "ReadWriteOnce", pv.csi.fsType, pv.mountOptions, singleNodeMultiWriter);
}

export interface AttacherOptions {
  readonly driverName: string;
  readonly singleNodeMultiWriter: boolean;
  readonly secrets?: Readonly<Record<string, string>>;
  readonly retry?: RetryPolicy;
  readonly stats?: RetryStats;
}

/**
 * The external-attacher: a VolumeAttachment becomes ControllerPublishVolume
 * to the node id from the node's CSINode (NodeGetInfo), and its publish
 * context becomes the attachment metadata the kubelet hands to NodeStage.
 */
export class ExternalAttacher {
  constructor(
    private readonly controller: () => Client<typeof Controller>,
    private readonly options: AttacherOptions,
  ) {}

  async attach(pv: PersistentVolume, nodeName: string, nodeId: string): Promise<VolumeAttachment> {
    const request = {
      volumeId: pv.csi.volumeHandle,
      nodeId,
      volumeCapability: pvCapability(pv, this.options.singleNodeMultiWriter),
      readonly: pv.csi.readOnly,
      volumeContext: { ...pv.csi.volumeAttributes },
      secrets: { ...this.options.secrets },
    };
    const response = await withRetries(
      `ControllerPublishVolume ${pv.csi.volumeHandle} to ${nodeId}`,
      (o) => this.controller().controllerPublishVolume(request, o),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
    return {
      name: attachmentName(pv.csi.volumeHandle, this.options.driverName, nodeName),
      pvName: pv.name,
      nodeName,
      attached: true,
      attachmentMetadata: { ...response.publishContext },
    };
  }

  async detach(attachment: VolumeAttachment, pv: PersistentVolume, nodeId: string): Promise<void> {
    await withRetries(
      `ControllerUnpublishVolume ${pv.csi.volumeHandle} from ${nodeId}`,
      (o) =>
        this.controller().controllerUnpublishVolume({ volumeId: pv.csi.volumeHandle, nodeId, secrets: { ...this.options.secrets } }, o),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
    attachment.attached = false;
  }
}
