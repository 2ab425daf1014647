import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { BlockRange, SnapshotBlocks, SnapshotMetadataBackend } from "../../src/backend/backend.js";
import { DEFAULT_RESULTS_PER_MESSAGE, MAX_RESULTS_PER_MESSAGE, snapshotMetadataService } from "../../src/driver/snapshot-metadata.js";
import { InvalidArgument, NotFound } from "../../src/errors.js";
import { BlockMetadataType, SnapshotMetadata } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { Code, expectCode } from "../driver/controller-harness.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// The SnapshotMetadata service's rules over an in-memory backend: what it checks before it asks the
// backend anything, how it packs ranges into messages, and how backend errors reach the caller.

const CAPACITY = 1 << 30;

/** `count` ranges of 4 KiB, 8 KiB apart; records every `from` the service asks for. */
function memoryBackend(count: number) {
  const asked: number[] = [];
  const blocks = (): SnapshotBlocks => ({
    capacityBytes: CAPACITY,
    async *ranges(from: number): AsyncGenerator<BlockRange> {
      asked.push(from);
      for (let i = 0; i < count; i++) if (i * 8192 + 4096 > from) yield { offset: i * 8192, length: 4096 };
    },
  });
  const backend: SnapshotMetadataBackend = {
    async allocatedBlocks(snapshotId) {
      if (snapshotId !== "snap-1") throw NotFound("snapshot %s does not exist", snapshotId);
      return blocks();
    },
    async changedBlocks(base, target) {
      if (base === target) throw InvalidArgument("the base and target snapshots are both %s", base);
      return blocks();
    },
  };
  return { backend, asked };
}

describe("SnapshotMetadata service", () => {
  let dir: string;
  let served: ServedRoutes | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("fast-snapmeta");
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await removeTestDir(dir);
  });

  const serve = async (count: number) => {
    const memory = memoryBackend(count);
    served = await serveRoutes(dir, silentLogger, (router) => router.service(SnapshotMetadata, snapshotMetadataService(memory.backend)));
    return { sm: served.clients.snapshotMetadata, asked: memory.asked };
  };
  async function read<T>(stream: AsyncIterable<T>): Promise<T[]> {
    const out: T[] = [];
    for await (const m of stream) out.push(m);
    return out;
  }

  it("packs ranges into messages of max_results, of its default when 0, and never more than its cap", async () => {
    const { sm } = await serve(5000);
    const sizes = async (maxResults: number) =>
      (await read(sm.getMetadataAllocated({ snapshotId: "snap-1", maxResults }))).map((m) => m.blockMetadata.length);
    expect(await sizes(0)).toEqual([
      DEFAULT_RESULTS_PER_MESSAGE,
      DEFAULT_RESULTS_PER_MESSAGE,
      DEFAULT_RESULTS_PER_MESSAGE,
      DEFAULT_RESULTS_PER_MESSAGE,
      5000 - 4 * DEFAULT_RESULTS_PER_MESSAGE,
    ]);
    expect(await sizes(2000)).toEqual([2000, 2000, 1000]);
    expect(await sizes(2_000_000_000)).toEqual([MAX_RESULTS_PER_MESSAGE, 5000 - MAX_RESULTS_PER_MESSAGE]);
    const messages = await read(sm.getMetadataDelta({ baseSnapshotId: "snap-1", targetSnapshotId: "snap-2", maxResults: 3000 }));
    expect(messages.map((m) => m.blockMetadata.length)).toEqual([3000, 2000]);
    for (const m of messages) {
      expect(m.blockMetadataType).toBe(BlockMetadataType.VARIABLE_LENGTH);
      expect(m.volumeCapacityBytes).toBe(BigInt(CAPACITY));
    }
  });

  it("sends one message with the capacity when there is no range at all", async () => {
    const { sm } = await serve(0);
    const messages = await read(sm.getMetadataAllocated({ snapshotId: "snap-1" }));
    expect(messages).toHaveLength(1);
    expect(messages[0]?.blockMetadata).toEqual([]);
    expect(messages[0]?.volumeCapacityBytes).toBe(BigInt(CAPACITY));
  });

  it("passes starting_offset to the backend and accepts the volume's size itself", async () => {
    const { sm, asked } = await serve(10);
    const messages = await read(sm.getMetadataAllocated({ snapshotId: "snap-1", startingOffset: 8192n * 5n }));
    expect(messages[0]?.blockMetadata[0]?.byteOffset).toBe(8192n * 5n);
    await read(sm.getMetadataAllocated({ snapshotId: "snap-1", startingOffset: BigInt(CAPACITY) }));
    expect(asked).toEqual([8192 * 5, CAPACITY]);
  });

  it("checks every field before it asks the backend for ranges", async () => {
    const { sm, asked } = await serve(10);
    await expectCode(read(sm.getMetadataAllocated({})), Code.InvalidArgument, /snapshot_id is required/);
    await expectCode(read(sm.getMetadataAllocated({ snapshotId: "s".repeat(129) })), Code.InvalidArgument, /snapshot_id is 129 bytes long/);
    await expectCode(read(sm.getMetadataAllocated({ snapshotId: "snap-1", maxResults: -1 })), Code.InvalidArgument, /max_results/);
    await expectCode(read(sm.getMetadataAllocated({ snapshotId: "snap-1", startingOffset: -5n })), Code.OutOfRange, /negative/);
    await expectCode(
      read(sm.getMetadataAllocated({ snapshotId: "snap-1", startingOffset: BigInt(CAPACITY) + 1n })),
      Code.OutOfRange,
      /past the end of the volume \(1073741824 bytes\)/,
    );
    await expectCode(
      read(sm.getMetadataAllocated({ snapshotId: "snap-1", secrets: { key: "v".repeat(5000) } })),
      Code.InvalidArgument,
      /secrets holds 5003 bytes/,
    );
    await expectCode(read(sm.getMetadataDelta({ targetSnapshotId: "snap-2" })), Code.InvalidArgument, /base_snapshot_id is required/);
    await expectCode(read(sm.getMetadataDelta({ baseSnapshotId: "snap-1" })), Code.InvalidArgument, /target_snapshot_id is required/);
    expect(asked).toEqual([]);
  });

  it("passes the backend's errors on with their codes", async () => {
    const { sm } = await serve(10);
    await expectCode(read(sm.getMetadataAllocated({ snapshotId: "snap-9" })), Code.NotFound, /snapshot snap-9 does not exist/);
    await expectCode(
      read(sm.getMetadataDelta({ baseSnapshotId: "snap-1", targetSnapshotId: "snap-1" })),
      Code.InvalidArgument,
      /both snap-1/,
    );
  });
});
