import type { StringMap } from "../backend.js";
import { InvalidArgument } from "../../csi/errors.js";

/**
 * The local backend takes no StorageClass or VolumeSnapshotClass parameters of
 * its own. Keys under csi.storage.k8s.io/ are accepted and ignored: the
 * Kubernetes sidecars add them (PVC/PV names with --extra-create-metadata).
 */
const PASSED_THROUGH_PREFIX = "csi.storage.k8s.io/";

function unknownKeys(parameters: StringMap): string[] {
  return Object.keys(parameters).filter((key) => !key.startsWith(PASSED_THROUGH_PREFIX));
}

export function validateVolumeParameters(parameters: StringMap, mutableParameters: StringMap): void {
  const unknown = unknownKeys(parameters);
  if (unknown.length > 0) {
    throw InvalidArgument(
      "unknown parameters %q: the local backend accepts no volume parameters (only %s* keys, which it ignores)",
      unknown,
      PASSED_THROUGH_PREFIX,
    );
  }
  const mutable = Object.keys(mutableParameters);
  if (mutable.length > 0) {
    throw InvalidArgument("unsupported mutable parameters %q: the local backend cannot modify volumes", mutable);
  }
}

export function validateSnapshotParameters(parameters: StringMap): void {
  const unknown = unknownKeys(parameters);
  if (unknown.length > 0) {
    throw InvalidArgument(
      "unknown snapshot parameters %q: the local backend accepts no snapshot parameters (only %s* keys, which it ignores)",
      unknown,
      PASSED_THROUGH_PREFIX,
    );
  }
}
