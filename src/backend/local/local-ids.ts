import { randomUUID } from "node:crypto";
import { NotFound } from "../../errors.js";

/**
 * Opaque, unique ids for local volumes and snapshots: a kind prefix, a random
 * UUID and the id of the node whose pool holds them,
 *
 *   vol-<uuid>.<node-id>     snap-<uuid>.<node-id>
 *
 * so they never repeat anywhere in a cluster and a request sent to the wrong
 * node's plugin is recognised (and refused) from the id alone. A node id is a
 * topology value (at most 63 characters), so an id is at most 105 bytes,
 * within CSI's 128. Ids of the single-node layout (`vol-<uuid>`, no node) stay
 * valid: they belong to whichever node's data dir holds them. Ids are stored in
 * the metadata and never derived from names.
 */
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
/** A CSI topology value, as the node id of the local backend must be. */
const NODE = "[A-Za-z0-9](?:[-_.A-Za-z0-9]{0,61}[A-Za-z0-9])?";
const NODE_SCOPED_ID = new RegExp(`^(?:vol|snap|group)-${UUID}\\.(${NODE})$`);

export function newVolumeId(nodeId: string): string {
  return `vol-${randomUUID()}.${nodeId}`;
}

export function newSnapshotId(nodeId: string): string {
  return `snap-${randomUUID()}.${nodeId}`;
}

/** True for an id this backend generates with a node in it. */
export function isNodeScopedId(id: string): boolean {
  return NODE_SCOPED_ID.test(id);
}

/**
 * The node a volume (or snapshot) id says it lives on; undefined for an id
 * without a node (the single-node layout's, or one this backend never issued).
 */
export function volumeNodeOf(id: string): string | undefined {
  return NODE_SCOPED_ID.exec(id)?.[1];
}

/**
 * Refuse a volume or snapshot that this node's pool does not hold and that its
 * id places on another node: NOT_FOUND naming both nodes, so a misrouted call
 * is plain in the caller's log, and nothing is changed. Callers ask only about
 * ids their pool does not hold: a data dir keeps serving what it holds when its
 * node is renamed.
 */
export function requireOnNode(
  id: string,
  kind: "volume" | "snapshot" | "source volume" | "source snapshot" | "group snapshot",
  nodeId: string,
): void {
  const owner = volumeNodeOf(id);
  if (owner !== undefined && owner !== nodeId) {
    throw NotFound(
      "%s %s lives on node %s, not on this node (%s): send the request to the plugin on node %s",
      kind,
      id,
      owner,
      nodeId,
      owner,
    );
  }
}
