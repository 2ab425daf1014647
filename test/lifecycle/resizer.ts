import type { Client } from "@connectrpc/connect";
import type { Controller } from "../../src/gen/csi/v1/csi_pb.js";
import { pvCapability } from "./attacher.js";
import type { PersistentVolume } from "./objects.js";
import { DEFAULT_RETRY, withRetries, type RetryPolicy, type RetryStats } from "./retry.js";

export interface ResizerOptions {
  readonly singleNodeMultiWriter: boolean;
  readonly secrets?: Readonly<Record<string, string>>;
  readonly retry?: RetryPolicy;
  readonly stats?: RetryStats;
}

export interface ControllerResize {
  readonly capacityBytes: bigint;
  /** When true the kubelet must call NodeExpandVolume on the node using the volume. */
  readonly nodeExpansionRequired: boolean;
}

/** The external-resizer: a larger PVC request becomes ControllerExpandVolume with the PV's capability. */
export class ExternalResizer {
  constructor(
    private readonly controller: () => Client<typeof Controller>,
    private readonly options: ResizerOptions,
  ) {}

  async expand(pv: PersistentVolume, newBytes: bigint): Promise<ControllerResize> {
    const request = {
      volumeId: pv.csi.volumeHandle,
      capacityRange: { requiredBytes: newBytes },
      volumeCapability: pvCapability(pv, this.options.singleNodeMultiWriter),
      secrets: { ...this.options.secrets },
    };
    const response = await withRetries(
      `ControllerExpandVolume ${pv.csi.volumeHandle} to ${newBytes}`,
      (o) => this.controller().controllerExpandVolume(request, o),
      this.options.retry ?? DEFAULT_RETRY,
      this.options.stats,
    );
    pv.capacityBytes = response.capacityBytes;
    return { capacityBytes: response.capacityBytes, nodeExpansionRequired: response.nodeExpansionRequired };
  }
}
