import { InvalidArgument } from "../../errors.js";
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
 * the caller to warn about. The one mutable parameter is `tags` (see
 * tagsParameter); any other mutable key is refused: there is no drop-in
 * promise to keep there.
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
  const mutable = Object.keys(mutableParameters).filter((key) => key !== TAGS_KEY);
  if (mutable.length > 0) {
    throw InvalidArgument("unknown mutable parameters %q: the DigitalOcean backend can change only %s", mutable, TAGS_KEY);
  }
  tagsParameter(mutableParameters);
  return ignored.sort();
}

export const TAGS_KEY = "tags";
/** DigitalOcean's tag names: letters, digits, `_`, `-` and `:`, at most 255 characters. */
const TAG_NAME = /^[a-zA-Z0-9_:-]{1,255}$/;
/** Tags one modification may ask for (the API takes more; a volume with more is hard to read anyway). */
const MAX_TAGS = 32;

/**
 * The mutable parameter `tags`: comma-separated DigitalOcean tag names (spaces
 * around them ignored, duplicates dropped); "" asks for none. Undefined when
 * the map does not name it; INVALID_ARGUMENT naming a bad tag.
 */
export function tagsParameter(mutableParameters: StringMap): string[] | undefined {
  const value = mutableParameters[TAGS_KEY];
  if (value === undefined) return undefined;
  const tags = [
    ...new Set(
      value
        .split(",")
        .map((t) => t.trim())
        .filter((t) => t !== ""),
    ),
  ];
  const bad = tags.filter((t) => !TAG_NAME.test(t));
  if (bad.length > 0) {
    throw InvalidArgument(
      "mutable parameter %s: %q are not DigitalOcean tag names (letters, digits, _, - and :, at most 255)",
      TAGS_KEY,
      bad,
    );
  }
  if (tags.length > MAX_TAGS) throw InvalidArgument("mutable parameter %s names %d tags; at most %d", TAGS_KEY, tags.length, MAX_TAGS);
  return tags;
}
