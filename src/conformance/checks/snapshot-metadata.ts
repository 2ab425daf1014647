import { Code } from "@connectrpc/connect";
import { BlockMetadataType, type Snapshot } from "../../gen/csi/v1/csi_pb.js";
import { fail, skip, verify, type Check } from "../check.js";
import type { CheckRun } from "../context.js";
import { BLOCK_PATTERN_BYTES, writeBlockPattern } from "../data.js";
import { describeOutcome, expectCode, outcome } from "../expect.js";
import { ControllerCap, needs, PluginService, type DriverProfile } from "../profile.js";
import { unknownSnapshotId } from "./shared.js";

/**
 * The SnapshotMetadata service (alpha): the shape of its streams (one
 * block_metadata_type and volume_capacity_bytes per stream, ordered tuples
 * that never overlap, max_results and starting_offset honoured), its error
 * codes, and that the ranges it reports cover what was written.
 */

const group = "SnapshotMetadata" as const;

const needService = (p: DriverProfile): string | undefined =>
  p.pluginServices.has(PluginService.SNAPSHOT_METADATA_SERVICE) ? undefined : "SNAPSHOT_METADATA_SERVICE is not advertised";
const needSnapshots = needs.all(needService, needs.controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CREATE_DELETE_SNAPSHOT));

interface Range {
  readonly offset: bigint;
  readonly end: bigint;
}

interface MetadataMessage {
  readonly blockMetadataType: BlockMetadataType;
  readonly volumeCapacityBytes: bigint;
  readonly blockMetadata: readonly { readonly byteOffset: bigint; readonly sizeBytes: bigint }[];
}

interface StreamRequest {
  readonly startingOffset: bigint;
  readonly maxResults: number;
}

interface Streamed {
  readonly capacity: bigint;
  readonly ranges: readonly Range[];
}

async function collect(stream: AsyncIterable<MetadataMessage>): Promise<MetadataMessage[]> {
  const messages: MetadataMessage[] = [];
  for await (const message of stream) messages.push(message);
  return messages;
}

/** Every rule the spec sets for a stream's messages; returns the ranges. */
function streamProblems(messages: readonly MetadataMessage[], request: StreamRequest): { problems: string[]; streamed: Streamed } {
  const problems: string[] = [];
  const ranges: Range[] = [];
  const first = messages[0];
  let fixedSize: bigint | undefined;
  for (const [i, m] of messages.entries()) {
    if (m.blockMetadataType === BlockMetadataType.UNKNOWN) problems.push(`message ${i}: block_metadata_type is REQUIRED (got UNKNOWN)`);
    if (first && m.blockMetadataType !== first.blockMetadataType) problems.push(`message ${i}: block_metadata_type changed mid-stream`);
    if (first && m.volumeCapacityBytes !== first.volumeCapacityBytes)
      problems.push(`message ${i}: volume_capacity_bytes changed mid-stream`);
    if (m.volumeCapacityBytes <= 0n) problems.push(`message ${i}: volume_capacity_bytes ${m.volumeCapacityBytes} is REQUIRED and positive`);
    if (request.maxResults > 0 && m.blockMetadata.length > request.maxResults)
      problems.push(`message ${i}: ${m.blockMetadata.length} tuples, more than max_results ${request.maxResults}`);
    for (const b of m.blockMetadata) {
      if (b.sizeBytes <= 0n) problems.push(`tuple at ${b.byteOffset}: size_bytes ${b.sizeBytes} MUST be greater than zero`);
      if (b.byteOffset < 0n) problems.push(`tuple at ${b.byteOffset}: a negative byte_offset`);
      if (m.blockMetadataType === BlockMetadataType.FIXED_LENGTH) {
        fixedSize ??= b.sizeBytes;
        if (b.sizeBytes !== fixedSize)
          problems.push(`tuple at ${b.byteOffset}: size_bytes ${b.sizeBytes} in a FIXED_LENGTH stream of ${fixedSize}`);
      }
      const previous = ranges.at(-1);
      if (previous && previous.end > b.byteOffset)
        problems.push(
          `tuple at ${b.byteOffset} starts before the previous one ends (${previous.end}): tuples MUST be ordered and not overlap`,
        );
      if (ranges.length === 0 && request.startingOffset >= b.byteOffset + b.sizeBytes)
        problems.push(`the first tuple (${b.byteOffset}+${b.sizeBytes}) ends at or before starting_offset ${request.startingOffset}`);
      ranges.push({ offset: b.byteOffset, end: b.byteOffset + b.sizeBytes });
    }
  }
  return { problems: problems.slice(0, 8), streamed: { capacity: first?.volumeCapacityBytes ?? 0n, ranges } };
}

/** Call, read the whole stream, and check its shape. */
async function streamed(what: string, call: () => AsyncIterable<MetadataMessage>, request: StreamRequest): Promise<Streamed> {
  const result = await outcome(collect(call()));
  if (!result.ok) fail(`${what}: ${describeOutcome(result)}`);
  const { problems, streamed } = streamProblems(result.value, request);
  verify(problems.length === 0, `${what}: ${problems.join("; ")}`);
  return streamed;
}

/** The bytes the ranges cover from `from` on, as merged ranges (so differently split answers compare equal). */
function coverage(ranges: readonly Range[], from = 0n): Range[] {
  const out: Range[] = [];
  for (const r of ranges) {
    const offset = r.offset > from ? r.offset : from;
    if (r.end <= offset) continue;
    const last = out.at(-1);
    if (!last || last.end < offset) out.push({ offset, end: r.end });
    else if (r.end > last.end) out[out.length - 1] = { offset: last.offset, end: r.end };
  }
  return out;
}

const describeRanges = (ranges: readonly Range[]) =>
  ranges.length === 0
    ? "nothing"
    : ranges
        .slice(0, 6)
        .map((r) => `[${r.offset}, ${r.end})`)
        .join(" ") + (ranges.length > 6 ? ` and ${ranges.length - 6} more` : "");

const sameCoverage = (a: readonly Range[], b: readonly Range[]) =>
  a.length === b.length && a.every((r, i) => r.offset === b[i]?.offset && r.end === b[i]?.end);

const covers = (ranges: readonly Range[], offset: bigint, length: bigint) =>
  ranges.some((r) => r.offset <= offset && r.end >= offset + length);

/** The allocated ranges of a snapshot read whole, paged by max_results 1, and resumed from the middle: all consistent. */
async function checkAllocatedStreams(run: CheckRun, snapshot: Snapshot, capacity: bigint): Promise<Streamed> {
  const sm = run.clients.snapshotMetadata;
  const request = (startingOffset: bigint, maxResults: number) => ({ snapshotId: snapshot.snapshotId, startingOffset, maxResults });
  run.step("GetMetadataAllocated");
  const whole = await streamed("GetMetadataAllocated", () => sm.getMetadataAllocated(request(0n, 0), run.call()), {
    startingOffset: 0n,
    maxResults: 0,
  });
  if (capacity > 0n)
    verify(whole.capacity === capacity, `volume_capacity_bytes is ${whole.capacity}, the snapshot's volume has ${capacity} bytes`);
  run.step("GetMetadataAllocated with max_results 1");
  const paged = await streamed("GetMetadataAllocated (max_results 1)", () => sm.getMetadataAllocated(request(0n, 1), run.call()), {
    startingOffset: 0n,
    maxResults: 1,
  });
  verify(
    sameCoverage(coverage(paged.ranges), coverage(whole.ranges)),
    `paged by max_results 1 the ranges cover ${describeRanges(coverage(paged.ranges))}, unpaged ${describeRanges(coverage(whole.ranges))}`,
  );
  const middle = (whole.capacity / 2n / 4096n) * 4096n + 512n;
  run.step(`GetMetadataAllocated from starting_offset ${middle}`);
  const resumed = await streamed(`GetMetadataAllocated from ${middle}`, () => sm.getMetadataAllocated(request(middle, 0), run.call()), {
    startingOffset: middle,
    maxResults: 0,
  });
  verify(
    sameCoverage(coverage(resumed.ranges, middle), coverage(whole.ranges, middle)),
    `resumed at ${middle} the ranges cover ${describeRanges(coverage(resumed.ranges, middle))}, the whole stream ${describeRanges(coverage(whole.ranges, middle))} from there`,
  );
  return whole;
}

export const snapshotMetadataChecks: Check[] = [
  {
    id: "snapshot-metadata.allocated-stream",
    group,
    title: "GetMetadataAllocated streams well-formed, ordered ranges, honouring max_results and starting_offset",
    level: "MUST",
    rule: "block_metadata_type and volume_capacity_bytes are REQUIRED and the same in every message; tuples MUST be ordered and not overlap; at most max_results per message; (S < B0.byte_offset + B0.size_bytes) for starting_offset S",
    skipUnless: needSnapshots,
    async run(run) {
      const volume = await run.createTestVolume("metaalloc");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("metaalloc"), volume.volumeId));
      await checkAllocatedStreams(run, snapshot, volume.capacityBytes);
    },
  },
  {
    id: "snapshot-metadata.delta-stream",
    group,
    title: "GetMetadataDelta between two snapshots of one volume streams well-formed, ordered ranges, honouring max_results",
    level: "MUST",
    rule: "block_metadata_type and volume_capacity_bytes are REQUIRED and the same in every message; tuples MUST be ordered and not overlap; at most max_results per message",
    skipUnless: needSnapshots,
    async run(run) {
      const volume = await run.createTestVolume("metadelta");
      const base = await run.createSnapshot(run.snapshotRequest(run.uniqueName("metabase"), volume.volumeId));
      const target = await run.createSnapshot(run.snapshotRequest(run.uniqueName("metatarget"), volume.volumeId));
      const sm = run.clients.snapshotMetadata;
      const request = (maxResults: number) => ({
        baseSnapshotId: base.snapshotId,
        targetSnapshotId: target.snapshotId,
        startingOffset: 0n,
        maxResults,
      });
      run.step("GetMetadataDelta");
      const whole = await streamed("GetMetadataDelta", () => sm.getMetadataDelta(request(0), run.call()), {
        startingOffset: 0n,
        maxResults: 0,
      });
      if (volume.capacityBytes > 0n)
        verify(
          whole.capacity === volume.capacityBytes,
          `volume_capacity_bytes is ${whole.capacity}, the volume has ${volume.capacityBytes} bytes`,
        );
      run.step("GetMetadataDelta with max_results 1");
      const paged = await streamed("GetMetadataDelta (max_results 1)", () => sm.getMetadataDelta(request(1), run.call()), {
        startingOffset: 0n,
        maxResults: 1,
      });
      verify(
        sameCoverage(coverage(paged.ranges), coverage(whole.ranges)),
        `paged by max_results 1 the ranges cover ${describeRanges(coverage(paged.ranges))}, unpaged ${describeRanges(coverage(whole.ranges))}`,
      );
    },
  },
  {
    id: "snapshot-metadata.errors",
    group,
    title: "SnapshotMetadata answers NOT_FOUND for unknown snapshots and OUT_OF_RANGE for a starting_offset outside the volume",
    level: "SHOULD",
    rule: "Invalid snapshot_id: 5 NOT_FOUND; invalid starting_offset (negative or beyond the volume size): 11 OUT_OF_RANGE",
    skipUnless: needSnapshots,
    async run(run) {
      const sm = run.clients.snapshotMetadata;
      const unknown = unknownSnapshotId();
      run.step("GetMetadataAllocated of an unknown snapshot");
      await expectCode(
        "GetMetadataAllocated of an unknown snapshot",
        collect(sm.getMetadataAllocated({ snapshotId: unknown }, run.call())),
        Code.NotFound,
      );
      const volume = await run.createTestVolume("metaerr");
      const snapshot = await run.createSnapshot(run.snapshotRequest(run.uniqueName("metaerr"), volume.volumeId));
      run.step("GetMetadataDelta with an unknown base snapshot");
      await expectCode(
        "GetMetadataDelta with an unknown base",
        collect(sm.getMetadataDelta({ baseSnapshotId: unknown, targetSnapshotId: snapshot.snapshotId }, run.call())),
        Code.NotFound,
      );
      run.step("GetMetadataDelta with an unknown target snapshot");
      await expectCode(
        "GetMetadataDelta with an unknown target",
        collect(sm.getMetadataDelta({ baseSnapshotId: snapshot.snapshotId, targetSnapshotId: unknown }, run.call())),
        Code.NotFound,
      );
      run.step("GetMetadataAllocated with a negative starting_offset");
      await expectCode(
        "GetMetadataAllocated with starting_offset -1",
        collect(sm.getMetadataAllocated({ snapshotId: snapshot.snapshotId, startingOffset: -1n }, run.call())),
        Code.OutOfRange,
      );
      if (volume.capacityBytes > 0n) {
        run.step("GetMetadataAllocated with a starting_offset past the volume's end");
        await expectCode(
          "GetMetadataAllocated with starting_offset past the volume's size",
          collect(sm.getMetadataAllocated({ snapshotId: snapshot.snapshotId, startingOffset: volume.capacityBytes + 1n }, run.call())),
          Code.OutOfRange,
        );
      }
    },
  },
  {
    id: "snapshot-metadata.written-blocks",
    group,
    title: "The allocated ranges of a snapshot cover what was written before it, and a delta covers what was written between two",
    level: "MUST",
    rule: "GetMetadataAllocated identifies the data ranges that were the target of some previous write; GetMetadataDelta the data ranges that changed between the two snapshots",
    skipUnless: needs.all(needSnapshots, needs.node()),
    async run(run) {
      if (run.options.noDataChecks) skip("data checks are disabled (--no-data-checks)");
      const p = await run.provision("metadata", "block");
      const block = BigInt(BLOCK_PATTERN_BYTES);
      const MiB = 1024n * 1024n;
      run.step("write 4 KiB at 0 and at 1 MiB");
      await writeBlockPattern(p.targetPath, 0);
      await writeBlockPattern(p.targetPath, Number(MiB));
      const base = await run.createSnapshot(run.snapshotRequest(run.uniqueName("metawrite1"), p.volume.volumeId));
      run.step("write 4 KiB at 1 MiB again and at 2 MiB");
      await writeBlockPattern(p.targetPath, Number(MiB));
      await writeBlockPattern(p.targetPath, Number(2n * MiB));
      const target = await run.createSnapshot(run.snapshotRequest(run.uniqueName("metawrite2"), p.volume.volumeId));
      const allocated = await checkAllocatedStreams(run, base, p.volume.capacityBytes);
      for (const offset of [0n, MiB])
        verify(
          covers(coverage(allocated.ranges), offset, block),
          `the allocated ranges (${describeRanges(coverage(allocated.ranges))}) miss the 4 KiB written at ${offset}`,
        );
      run.step("GetMetadataDelta between the two snapshots");
      const sm = run.clients.snapshotMetadata;
      const delta = await streamed(
        "GetMetadataDelta",
        () => sm.getMetadataDelta({ baseSnapshotId: base.snapshotId, targetSnapshotId: target.snapshotId }, run.call()),
        { startingOffset: 0n, maxResults: 0 },
      );
      for (const offset of [MiB, 2n * MiB])
        verify(
          covers(coverage(delta.ranges), offset, block),
          `the delta (${describeRanges(coverage(delta.ranges))}) misses the 4 KiB written at ${offset} between the snapshots`,
        );
      await run.teardown(p);
    },
  },
];
