import { createHash } from "node:crypto";
import type { StringMap } from "../backend.js";

export const GIB = 1024 ** 3;

/** The Go driver's volume_context key carrying the DigitalOcean volume name (fixed, whatever --driver-name is). */
export const VOLUME_NAME_CONTEXT_KEY = "dobs.csi.digitalocean.com/volume-name";

/** The publish_context key the Go driver (and so the node service) reads the volume name from. */
export function publishContextKey(driverName: string): string {
  return `${driverName}/volume-name`;
}

/** Description the Go driver gives the volumes it creates. */
export const CREATED_BY = "Created by DigitalOcean CSI driver";

/** Prefix of the by-id links of DigitalOcean volumes (`scsi-0DO_Volume_<name>`). */
export const DEVICE_LINK_PREFIX = "scsi-0DO_Volume_";

const VALID_NAME = /^[a-z][a-z0-9-]{0,63}$/;

/**
 * The DigitalOcean volume name for a CSI volume name. Kubernetes names
 * (`pvc-<uid>`) are valid DigitalOcean names and are used as they are, as the
 * Go driver does. A name the API would refuse (upper case, '_', '.', too long,
 * not starting with a letter) is mapped to a valid one, deterministically (so
 * a retried CreateVolume finds its volume) and with a hash of the original (so
 * two names never share a volume).
 */
export function doVolumeName(csiName: string): string {
  if (VALID_NAME.test(csiName)) return csiName;
  const hash = createHash("sha256").update(csiName).digest("hex").slice(0, 12);
  const base = csiName
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .slice(0, 64 - hash.length - 1)
    .replace(/-+$/, "");
  return `${base === "" ? "vol" : base}-${hash}`;
}

/** The DigitalOcean volume name a CO handed back, from the publish_context or the volume_context. */
export function volumeNameFrom(driverName: string, ...contexts: readonly StringMap[]): string | undefined {
  for (const context of contexts) {
    const name = context[publishContextKey(driverName)] ?? context[VOLUME_NAME_CONTEXT_KEY];
    if (name !== undefined && name !== "") return name;
  }
  return undefined;
}

/** Droplet id of a CSI node id, or undefined when it cannot be one. */
export function dropletIdOf(nodeId: string): number | undefined {
  if (!/^\d{1,15}$/.test(nodeId)) return undefined;
  const id = Number(nodeId);
  return id > 0 ? id : undefined;
}
