import type { MessageInitShape } from "@bufbuild/protobuf";
import type { SnapshotBlocks, SnapshotMetadataBackend } from "../backend/backend.js";
import { InvalidArgument, OutOfRange } from "../errors.js";
import { BlockMetadataType, type BlockMetadataSchema, type SnapshotMetadata } from "../gen/csi/v1/csi_pb.js";
import { checkMap, requireString } from "./controller-validation.js";
import type { ServiceHandlers } from "./service.js";

/**
 * The SnapshotMetadata service (alpha): allocated ranges of a snapshot and
 * changed ranges between two snapshots of one volume, streamed as the backend
 * computes them. Ranges are extents (VARIABLE_LENGTH); a request's
 * max_results bounds the tuples per message. Every stream carries at least
 * one message, so a caller always learns the volume's capacity.
 */

/** Tuples per message when the caller leaves max_results at 0. */
export const DEFAULT_RESULTS_PER_MESSAGE = 1024;
/** Most tuples in one message whatever the caller asks (about 100 KiB, far below the 4 MiB message limit). */
export const MAX_RESULTS_PER_MESSAGE = 4096;

/** The fields both responses share (each response message has exactly these). */
interface ResponseInit {
  readonly blockMetadataType: BlockMetadataType;
  readonly volumeCapacityBytes: bigint;
  readonly blockMetadata: BlockMetadataInit[];
}
type BlockMetadataInit = MessageInitShape<typeof BlockMetadataSchema>;

interface StreamRequest {
  readonly startingOffset: bigint;
  readonly maxResults: number;
  readonly secrets: Readonly<Record<string, string>>;
}

/** The caller's starting_offset and max_results, checked before anything is looked up. */
function checkStream(request: StreamRequest): { from: bigint; perMessage: number } {
  checkMap(request.secrets, "secrets");
  if (request.startingOffset < 0n)
    throw OutOfRange("starting_offset must not be negative (got %s); use 0 to start at the beginning", request.startingOffset.toString());
  if (request.maxResults < 0)
    throw InvalidArgument("max_results must not be negative (got %d); use 0 to let the plugin choose", request.maxResults);
  const perMessage = request.maxResults === 0 ? DEFAULT_RESULTS_PER_MESSAGE : Math.min(request.maxResults, MAX_RESULTS_PER_MESSAGE);
  return { from: request.startingOffset, perMessage };
}

/** The backend's ranges from `from` on, in messages of at most `perMessage` tuples. */
async function* messages(blocks: SnapshotBlocks, from: bigint, perMessage: number, signal: AbortSignal): AsyncGenerator<ResponseInit> {
  if (from > BigInt(blocks.capacityBytes))
    throw OutOfRange(
      "starting_offset %s is past the end of the volume (%d bytes); continue from at most the volume's size",
      from.toString(),
      blocks.capacityBytes,
    );
  const message = (blockMetadata: BlockMetadataInit[]): ResponseInit => ({
    blockMetadataType: BlockMetadataType.VARIABLE_LENGTH,
    volumeCapacityBytes: BigInt(blocks.capacityBytes),
    blockMetadata,
  });
  let batch: BlockMetadataInit[] = [];
  let sent = 0;
  for await (const range of blocks.ranges(Number(from), signal)) {
    batch.push({ byteOffset: BigInt(range.offset), sizeBytes: BigInt(range.length) });
    if (batch.length === perMessage) {
      yield message(batch);
      sent++;
      batch = [];
    }
  }
  if (batch.length > 0 || sent === 0) yield message(batch);
}

export function snapshotMetadataService(backend: SnapshotMetadataBackend): ServiceHandlers<typeof SnapshotMetadata> {
  return {
    async *getMetadataAllocated(request, ctx) {
      const snapshotId = requireString(request.snapshotId, "snapshot_id", "the snapshot whose allocated ranges to list");
      const { from, perMessage } = checkStream(request);
      const blocks = await backend.allocatedBlocks(snapshotId, ctx.signal);
      yield* messages(blocks, from, perMessage, ctx.signal);
    },
    async *getMetadataDelta(request, ctx) {
      const base = requireString(request.baseSnapshotId, "base_snapshot_id", "the earlier snapshot to compare against");
      const target = requireString(request.targetSnapshotId, "target_snapshot_id", "the later snapshot of the same volume");
      const { from, perMessage } = checkStream(request);
      const blocks = await backend.changedBlocks(base, target, ctx.signal);
      yield* messages(blocks, from, perMessage, ctx.signal);
    },
  };
}
