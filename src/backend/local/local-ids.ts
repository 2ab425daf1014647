import { randomUUID } from "node:crypto";

/**
 * Opaque, unique ids for local volumes and snapshots: a kind prefix and a
 * random UUID, so they satisfy layout.isLocalId and never repeat, even across
 * data dirs. They are stored in the metadata and never derived from names.
 */
export function newVolumeId(): string {
  return `vol-${randomUUID()}`;
}

export function newSnapshotId(): string {
  return `snap-${randomUUID()}`;
}
