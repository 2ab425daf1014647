import type { MessageInitShape } from "@bufbuild/protobuf";
import type { GroupSnapshot, GroupSnapshotBackend } from "../backend/backend.js";
import { AlreadyExists, InvalidArgument, NotFound } from "../errors.js";
import {
  type GroupController,
  GroupControllerServiceCapability_RPC_Type as Rpc,
  type VolumeGroupSnapshotSchema,
} from "../gen/csi/v1/csi_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { snapshotMessage } from "./controller-messages.js";
import { checkMap, checkStringSize, requireName, requireString } from "./controller-validation.js";
import { InFlight, volumeKey } from "./inflight.js";
import type { ServiceHandlers } from "./service.js";

/**
 * The GroupController service over a backend that cuts volume group
 * snapshots: validation with the spec's codes, idempotency by name (the same
 * name with another set of volumes is ALREADY_EXISTS), snapshot_ids checked
 * against the group (INVALID_ARGUMENT on a mismatch), and one operation at a
 * time per group name, group id and member volume (ABORTED otherwise, shared
 * with the Controller service's keys so a snapshot or deletion of a member
 * waits its turn).
 */

/** Members one group may have: each is a full image copy, and a larger freeze is one nobody wants. */
export const MAX_GROUP_MEMBERS = 64;

const GROUP_ID_HINT = "give the group_snapshot_id CreateVolumeGroupSnapshot returned";
const groupNameKey = (name: string) => `group-name:${name}`;
const groupKey = (id: string) => `group:${id}`;

type VolumeGroupSnapshotInit = MessageInitShape<typeof VolumeGroupSnapshotSchema>;

function groupMessage(group: GroupSnapshot): VolumeGroupSnapshotInit {
  return {
    groupSnapshotId: group.id,
    snapshots: group.snapshots.map((s) => snapshotMessage(s)),
    creationTime: timestampFromDate(group.createdAt),
    readyToUse: group.readyToUse,
  };
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}

/** The snapshot_ids a caller names must be exactly the group's members (REQUIRED, so at least one). */
function checkSnapshotIds(snapshotIds: readonly string[], group: GroupSnapshot | undefined): void {
  if (group === undefined) return;
  const members = group.snapshots.map((s) => s.id);
  if (!sameSet(snapshotIds, members)) {
    throw InvalidArgument(
      "snapshot_ids do not match group snapshot %s: it has %d members (%q)",
      group.id,
      members.length,
      members.slice(0, 8),
    );
  }
}

function requireIds(ids: readonly string[], field: string, hint: string): string[] {
  if (ids.length === 0) throw InvalidArgument("%s is required: %s", field, hint);
  if (ids.length > MAX_GROUP_MEMBERS)
    throw InvalidArgument("%s names %d ids; a group snapshot has at most %d", field, ids.length, MAX_GROUP_MEMBERS);
  for (const [i, id] of ids.entries()) requireString(id, `${field}[${i}]`, hint);
  if (new Set(ids).size !== ids.length) throw InvalidArgument("%s names the same id more than once", field);
  return [...ids];
}

export function groupControllerService(options: {
  readonly backend: GroupSnapshotBackend;
  /** The Controller service's registry, so member volumes are locked against its operations too. */
  readonly inflight?: InFlight;
}): ServiceHandlers<typeof GroupController> {
  const { backend } = options;
  const inflight = options.inflight ?? new InFlight();

  return {
    groupControllerGetCapabilities() {
      return { capabilities: [{ type: { case: "rpc", value: { type: Rpc.CREATE_DELETE_GET_VOLUME_GROUP_SNAPSHOT } } }] };
    },

    async createVolumeGroupSnapshot(req, ctx) {
      const name = requireName(req.name, "name");
      const sourceVolumeIds = requireIds(req.sourceVolumeIds, "source_volume_ids", "give the ids of the volumes to snapshot together");
      const parameters = checkMap(req.parameters, "parameters");
      checkMap(req.secrets, "secrets");
      return inflight.run([groupNameKey(name), ...sourceVolumeIds.map(volumeKey)], "CreateVolumeGroupSnapshot", async () => {
        const existing = await backend.findByName(name, ctx.signal);
        if (existing) {
          if (!sameSet(existing.sourceVolumeIds, sourceVolumeIds)) {
            throw AlreadyExists(
              "a group snapshot named %s already exists (%s) of %d other volumes (%q)",
              name,
              existing.id,
              existing.sourceVolumeIds.length,
              existing.sourceVolumeIds.slice(0, 8),
            );
          }
          return { groupSnapshot: groupMessage(existing) };
        }
        const group = await backend.create({ name, sourceVolumeIds, parameters }, ctx.signal);
        return { groupSnapshot: groupMessage(group) };
      });
    },

    async deleteVolumeGroupSnapshot(req, ctx) {
      const id = requireString(req.groupSnapshotId, "group_snapshot_id", GROUP_ID_HINT);
      const snapshotIds = requireIds(req.snapshotIds, "snapshot_ids", "give the ids of the group's snapshots");
      checkMap(req.secrets, "secrets");
      await inflight.run([groupKey(id)], "DeleteVolumeGroupSnapshot", async () => {
        checkSnapshotIds(snapshotIds, await backend.get(id, ctx.signal));
        await backend.delete(id, ctx.signal);
      });
      return {};
    },

    async getVolumeGroupSnapshot(req, ctx) {
      const id = requireString(req.groupSnapshotId, "group_snapshot_id", GROUP_ID_HINT);
      for (const [i, snapshotId] of req.snapshotIds.entries()) checkStringSize(snapshotId, `snapshot_ids[${i}]`);
      checkMap(req.secrets, "secrets");
      const group = await backend.get(id, ctx.signal);
      if (!group) throw NotFound("group snapshot %s does not exist", id);
      checkSnapshotIds(requireIds(req.snapshotIds, "snapshot_ids", "give the ids of the group's snapshots"), group);
      return { groupSnapshot: groupMessage(group) };
    },
  };
}
