import type { StringMap } from "../backend.js";
import { InvalidArgument } from "../../errors.js";
import { PROVISIONING_KEY, provisioningOf } from "./provisioning.js";

/**
 * The local backend's one volume parameter is `provisioning` (thin | thick,
 * see provisioning.ts), as a StorageClass parameter or a mutable parameter;
 * snapshots take none. Keys under csi.storage.k8s.io/ are accepted and
 * ignored: the Kubernetes sidecars add them (PVC/PV names with
 * --extra-create-metadata).
 */
const PASSED_THROUGH_PREFIX = "csi.storage.k8s.io/";

function unknownKeys(parameters: StringMap, known: readonly string[] = []): string[] {
  return Object.keys(parameters).filter((key) => !key.startsWith(PASSED_THROUGH_PREFIX) && !known.includes(key));
}

export function validateVolumeParameters(parameters: StringMap, mutableParameters: StringMap): void {
  const unknown = unknownKeys(parameters, [PROVISIONING_KEY]);
  if (unknown.length > 0) {
    throw InvalidArgument(
      "unknown parameters %q: the local backend accepts %s (thin or thick) and ignores %s* keys",
      unknown,
      PROVISIONING_KEY,
      PASSED_THROUGH_PREFIX,
    );
  }
  const mutable = Object.keys(mutableParameters).filter((key) => key !== PROVISIONING_KEY);
  if (mutable.length > 0) {
    throw InvalidArgument("unknown mutable parameters %q: the local backend can change only %s (thin or thick)", mutable, PROVISIONING_KEY);
  }
  const asked = provisioningOf(parameters, "parameters");
  const mutably = provisioningOf(mutableParameters, "mutable_parameters");
  if (asked !== undefined && mutably !== undefined && asked !== mutably) {
    throw InvalidArgument("parameters and mutable_parameters ask for different provisioning (%s, %s): give one", asked, mutably);
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
