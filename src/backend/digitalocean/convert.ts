import type { ContentSource, Snapshot, Volume } from "../backend.js";
import type { DoSnapshot, DoVolume } from "./api/types.js";
import { GIB, VOLUME_NAME_CONTEXT_KEY } from "./names.js";

/** A DigitalOcean volume as the services see it. `name` overrides the DO name with the CSI name when the caller knows it. */
export function toVolume(v: DoVolume, options: { name?: string; source?: ContentSource } = {}): Volume {
  return {
    id: v.id,
    name: options.name ?? v.name,
    capacityBytes: v.size_gigabytes * GIB,
    // The Go driver's key: the CO hands it back on publish, which saves a GET of the volume.
    context: { [VOLUME_NAME_CONTEXT_KEY]: v.name },
    ...(options.source ? { source: options.source } : {}),
    accessibleTopology: [{ region: v.region.slug }],
    publishedNodeIds: (v.droplet_ids ?? []).map(String),
  };
}

/** A volume snapshot as the services see it; ready once the API lists a region it is available in. */
export function toSnapshot(s: DoSnapshot): Snapshot {
  return {
    id: s.id,
    name: s.name,
    sourceVolumeId: s.resource_id,
    sizeBytes: s.min_disk_size * GIB,
    createdAt: new Date(s.created_at),
    readyToUse: s.regions.length > 0,
  };
}
