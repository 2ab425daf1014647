import { InvalidArgument } from "../../csi/errors.js";
import type { StringMap } from "../backend.js";

const LUKS_PREFIX = "dobs.csi.digitalocean.com/luks-";

/**
 * StorageClass parameters the Go driver's StorageClasses use: `fstype`
 * (handled by the CO and the node service), the kubernetes sidecars'
 * `csi.storage.k8s.io/*` keys, and the LUKS keys, of which only
 * `luks-encrypted: "false"` is accepted: this driver does not encrypt, and
 * says so instead of creating an unencrypted volume for an encrypted class.
 *
 * Any other key is accepted and ignored, as the Go driver does: a
 * StorageClass cannot be edited, so one that worked with the Go driver must
 * keep provisioning after the swap. The keys ignored are returned (sorted) for
 * the caller to warn about. Mutable parameters stay refused: there is no
 * drop-in promise to keep, and nothing can modify a volume.
 */
export function validateDigitalOceanParameters(parameters: StringMap, mutableParameters: StringMap): string[] {
  const ignored: string[] = [];
  for (const [key, value] of Object.entries(parameters)) {
    if (key.toLowerCase() === "fstype" || key.startsWith("csi.storage.k8s.io/")) continue;
    if (key === `${LUKS_PREFIX}encrypted`) {
      if (value === "" || value === "false") continue;
      throw InvalidArgument("parameter %s=%s: LUKS encryption is not supported by this driver", key, value);
    }
    if (key === `${LUKS_PREFIX}cipher` || key === `${LUKS_PREFIX}key-size`) continue;
    ignored.push(key);
  }
  const mutable = Object.keys(mutableParameters);
  if (mutable.length > 0) {
    throw InvalidArgument("the DigitalOcean backend has no mutable parameters; cannot accept %s", mutable);
  }
  return ignored.sort();
}
