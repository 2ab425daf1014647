import { VolumeCapability_AccessMode_Mode as Mode } from "../../src/gen/csi/v1/csi_pb.js";
import type { AccessModeName, VolumeMode } from "./objects.js";

/** The plain-object VolumeCapability the Kubernetes components send. */
export interface CapabilityInit {
  accessType: { case: "mount"; value: { fsType: string; mountFlags: string[] } } | { case: "block"; value: Record<string, never> };
  accessMode: { mode: Mode };
}

/**
 * How the Kubernetes components map a PV access mode to a CSI one (the
 * kubelet's and the sidecars' asCSIAccessMode): with the driver's
 * SINGLE_NODE_MULTI_WRITER capability ReadWriteOnce becomes
 * SINGLE_NODE_MULTI_WRITER and ReadWriteOncePod SINGLE_NODE_SINGLE_WRITER.
 */
export function csiAccessMode(mode: AccessModeName, singleNodeMultiWriter: boolean): Mode {
  switch (mode) {
    case "ReadWriteOnce":
      return singleNodeMultiWriter ? Mode.SINGLE_NODE_MULTI_WRITER : Mode.SINGLE_NODE_WRITER;
    case "ReadWriteOncePod":
      return singleNodeMultiWriter ? Mode.SINGLE_NODE_SINGLE_WRITER : Mode.SINGLE_NODE_WRITER;
    case "ReadOnlyMany":
      return Mode.MULTI_NODE_READER_ONLY;
    case "ReadWriteMany":
      return Mode.MULTI_NODE_MULTI_WRITER;
  }
}

export function capabilityFor(
  volumeMode: VolumeMode,
  accessMode: AccessModeName,
  fsType: string,
  mountFlags: readonly string[],
  singleNodeMultiWriter: boolean,
): CapabilityInit {
  const mode = csiAccessMode(accessMode, singleNodeMultiWriter);
  if (volumeMode === "Block") return { accessType: { case: "block", value: {} }, accessMode: { mode } };
  return { accessType: { case: "mount", value: { fsType, mountFlags: [...mountFlags] } }, accessMode: { mode } };
}
