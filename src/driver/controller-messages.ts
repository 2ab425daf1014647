import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { SnapshotSchema, VolumeConditionSchema, VolumeContentSourceSchema, VolumeSchema } from "../gen/csi/v1/csi_pb.js";
import type { ContentSource, Snapshot, Volume } from "../backend/backend.js";

/** Backend objects as CSI messages. */

export type VolumeInit = MessageInitShape<typeof VolumeSchema>;
export type SnapshotInit = MessageInitShape<typeof SnapshotSchema>;
export type VolumeConditionInit = MessageInitShape<typeof VolumeConditionSchema>;

function contentSourceMessage(source: ContentSource): MessageInitShape<typeof VolumeContentSourceSchema> {
  return source.kind === "snapshot"
    ? { type: { case: "snapshot", value: { snapshotId: source.id } } }
    : { type: { case: "volume", value: { volumeId: source.id } } };
}

export function volumeMessage(volume: Volume): VolumeInit {
  return {
    volumeId: volume.id,
    capacityBytes: BigInt(volume.capacityBytes),
    volumeContext: { ...volume.context },
    contentSource: volume.source ? contentSourceMessage(volume.source) : undefined,
    accessibleTopology: volume.accessibleTopology.map((segments) => ({ segments: { ...segments } })),
  };
}

export function snapshotMessage(snapshot: Snapshot): SnapshotInit {
  return {
    snapshotId: snapshot.id,
    sourceVolumeId: snapshot.sourceVolumeId,
    sizeBytes: BigInt(snapshot.sizeBytes),
    creationTime: timestampFromDate(snapshot.createdAt),
    readyToUse: snapshot.readyToUse,
    groupSnapshotId: snapshot.groupSnapshotId ?? "",
  };
}

/** The condition to report when the capability is on; a backend that says nothing reports a healthy volume. */
export function conditionMessage(volume: Volume): VolumeConditionInit {
  return volume.condition
    ? { abnormal: volume.condition.abnormal, message: volume.condition.message }
    : { abnormal: false, message: "volume is available" };
}
