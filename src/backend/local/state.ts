import type { AccessType, ContentSource, StringMap } from "../backend.js";

/**
 * The local backend's metadata, kept in <data-dir>/state.json. Every change
 * is recorded before the files it concerns are touched (an intent), so a
 * restart after a crash knows what to finish or undo:
 *
 *   creating -> files may be partly written; rolled back on start-up
 *   ready    -> the image is complete; the only phase ever reported
 *   deleting -> the image may be partly removed; the removal is finished on start-up
 */
export type Phase = "creating" | "ready" | "deleting";

export interface AttachmentRecord {
  readonly nodeId: string;
  readonly readonly: boolean;
  readonly accessType: AccessType;
}

/** A filesystem frozen for a consistent copy, recorded so a restart can thaw it if the process died meanwhile. */
export interface FrozenMount {
  readonly mountPoint: string;
  /** The loop device mounted there, backed by the source image. */
  readonly device: string;
}

export interface VolumeRecord {
  readonly id: string;
  readonly name: string;
  readonly phase: Phase;
  readonly sizeBytes: number;
  readonly accessTypes: readonly AccessType[];
  readonly fsType: string;
  readonly parameters: StringMap;
  /** "thick": every block of the image is allocated (provisioning.ts); absent: thin. */
  readonly provisioning?: "thick";
  readonly source?: ContentSource;
  /** ISO time the volume was requested. */
  readonly createdAt: string;
  /** Order in listings: assigned when the volume becomes ready, never reused; 0 before. */
  readonly listPosition: number;
  readonly attachments: readonly AttachmentRecord[];
  /** Filesystems of a clone's source frozen while it is copied. */
  readonly frozenMounts: readonly FrozenMount[];
}

export interface SnapshotRecord {
  readonly id: string;
  readonly name: string;
  readonly phase: Phase;
  readonly sourceVolumeId: string;
  /** Size of the source volume when the snapshot was cut: the smallest volume it can be restored into. */
  readonly sizeBytes: number;
  readonly parameters: StringMap;
  /** ISO time the snapshot was cut. */
  readonly createdAt: string;
  readonly listPosition: number;
  readonly frozenMounts: readonly FrozenMount[];
  /** Set on the members of a volume group snapshot. */
  readonly groupSnapshotId?: string;
}

/**
 * A volume group snapshot: its members are ordinary snapshot records carrying
 * its id. Created in phase "creating" with its members, all of them cut while
 * every member's filesystem is frozen, then marked ready together; deleted by
 * marking it "deleting", removing its members, then the record.
 */
export interface GroupRecord {
  readonly id: string;
  readonly name: string;
  readonly phase: Phase;
  readonly sourceVolumeIds: readonly string[];
  readonly snapshotIds: readonly string[];
  readonly parameters: StringMap;
  /** ISO time the members were cut. */
  readonly createdAt: string;
}

export const STATE_FORMAT = 1;

export interface LocalState {
  readonly format: typeof STATE_FORMAT;
  /** The last list position handed out; the next ready object gets the one after. */
  lastListPosition: number;
  readonly volumes: Record<string, VolumeRecord>;
  readonly snapshots: Record<string, SnapshotRecord>;
  /** Absent in data dirs written before group snapshots existed. */
  groups?: Record<string, GroupRecord>;
}

export function emptyState(): LocalState {
  return { format: STATE_FORMAT, lastListPosition: 0, volumes: {}, snapshots: {}, groups: {} };
}

/** Check the shape of state read from disk; throws a message naming what is wrong. */
export function checkState(value: unknown): LocalState {
  const fail = (what: string): never => {
    throw new Error(`invalid metadata: ${what}`);
  };
  if (typeof value !== "object" || value === null) return fail("not a JSON object");
  const state = value as Partial<LocalState>;
  if (state.format !== STATE_FORMAT) return fail(`format ${JSON.stringify(state.format)} is not ${STATE_FORMAT}`);
  if (typeof state.lastListPosition !== "number" || !Number.isSafeInteger(state.lastListPosition))
    return fail("lastListPosition is not an integer");
  if (typeof state.volumes !== "object" || state.volumes === null) return fail("volumes is not an object");
  if (typeof state.snapshots !== "object" || state.snapshots === null) return fail("snapshots is not an object");
  for (const [id, v] of Object.entries(state.volumes)) {
    if (v.id !== id || typeof v.name !== "string" || typeof v.sizeBytes !== "number" || !Array.isArray(v.attachments))
      return fail(`volume ${id} is malformed`);
  }
  if (state.groups !== undefined && (typeof state.groups !== "object" || state.groups === null)) return fail("groups is not an object");
  for (const [id, g] of Object.entries(state.groups ?? {})) {
    if (g.id !== id || typeof g.name !== "string" || !Array.isArray(g.snapshotIds) || !Array.isArray(g.sourceVolumeIds))
      return fail(`group snapshot ${id} is malformed`);
  }
  for (const [id, s] of Object.entries(state.snapshots)) {
    if (s.id !== id || typeof s.name !== "string" || typeof s.sourceVolumeId !== "string" || typeof s.sizeBytes !== "number")
      return fail(`snapshot ${id} is malformed`);
  }
  return state as LocalState;
}
