import { randomInt, randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import type { Snapshot, Volume } from "../../gen/csi/v1/csi_pb.js";
import { fail } from "../check.js";
import type { CheckRun, CreateVolumeRequestInit } from "../context.js";
import { describeOutcome, outcome } from "../expect.js";
import { PluginService } from "../profile.js";
import { identifierProblem, mapProblem, topologyAdmits, topologyPrefixProblem, topologyProblems } from "../spec-rules.js";

/** An id no plugin has handed out (a fresh UUID, a common volume id shape). */
export function unknownVolumeId(): string {
  return randomUUID();
}

export function unknownSnapshotId(): string {
  return randomUUID();
}

/** A node id no plugin knows; numeric so that plugins with numeric node ids parse it and look it up. */
export function unknownNodeId(): string {
  return String(900_000_000 + randomInt(90_000_000));
}

/**
 * What is wrong with a volume a CreateVolume request returned, by the rules
 * on the Volume message and the request's capacity range and topology.
 */
export function volumeProblems(run: CheckRun, request: CreateVolumeRequestInit, volume: Volume): string[] {
  const problems: string[] = [];
  const id = identifierProblem("volume_id", volume.volumeId);
  if (id !== undefined) problems.push(id);
  const capacity = volume.capacityBytes;
  const required = request.capacityRange?.requiredBytes ?? 0n;
  const limit = request.capacityRange?.limitBytes ?? 0n;
  if (capacity < 0n) problems.push(`capacity_bytes ${capacity} is negative`);
  if (capacity > 0n && BigInt(required) > 0n && capacity < BigInt(required))
    problems.push(`capacity_bytes ${capacity} is less than required_bytes ${required}`);
  if (capacity > 0n && BigInt(limit) > 0n && capacity > BigInt(limit))
    problems.push(`capacity_bytes ${capacity} is more than limit_bytes ${limit}`);
  const context = mapProblem("volume_context", volume.volumeContext);
  if (context !== undefined) problems.push(context);

  const topologies = volume.accessibleTopology.map((t) => t.segments);
  if (topologies.length > 0) {
    if (!run.profile.pluginServices.has(PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS)) {
      problems.push("accessible_topology is set but the plugin does not advertise VOLUME_ACCESSIBILITY_CONSTRAINTS");
    }
    for (const segments of topologies) problems.push(...topologyProblems(segments));
    const node = run.profile.nodeInfo?.accessibleTopology?.segments;
    const prefix = topologyPrefixProblem(node !== undefined ? [...topologies, node] : topologies);
    if (prefix !== undefined) problems.push(prefix);
    const requisite = (request.accessibilityRequirements?.requisite ?? []).map((t) => t.segments ?? {});
    if (requisite.length > 0) {
      if (topologies.length <= requisite.length) {
        const outside = topologies.filter((t) => !requisite.some((r) => topologyAdmits(t, r)));
        if (outside.length > 0)
          problems.push(`accessible_topology ${JSON.stringify(outside)} is outside the requisite topologies ${JSON.stringify(requisite)}`);
      } else {
        const missing = requisite.filter((r) => !topologies.some((t) => topologyAdmits(t, r)));
        if (missing.length > 0)
          problems.push(`accessible_topology has more entries than the requisite list but misses requisite ${JSON.stringify(missing)}`);
      }
    }
  }

  const source = volume.contentSource?.type;
  const requested = request.volumeContentSource?.type;
  if (source !== undefined && source.case !== undefined) {
    if (requested === undefined || requested.case === undefined)
      problems.push("content_source is set on a volume created without a source");
    else if (requested.case !== source.case) problems.push(`content_source is a ${source.case}, the request's a ${requested.case}`);
    else {
      const want = requested.case === "snapshot" ? requested.value.snapshotId : requested.value.volumeId;
      const got = source.case === "snapshot" ? source.value.snapshotId : source.value.volumeId;
      if (want !== got) problems.push(`content_source names ${got}, the request named ${want}`);
    }
  }
  return problems;
}

/** What is wrong with a Snapshot message, by the rules on its fields. */
export function snapshotProblems(snapshot: Snapshot, sourceVolumeId: string | undefined): string[] {
  const problems: string[] = [];
  const id = identifierProblem("snapshot_id", snapshot.snapshotId);
  if (id !== undefined) problems.push(id);
  if (snapshot.sourceVolumeId === "") problems.push("source_volume_id is empty (REQUIRED)");
  else if (sourceVolumeId !== undefined && snapshot.sourceVolumeId !== sourceVolumeId)
    problems.push(`source_volume_id is ${snapshot.sourceVolumeId}, not ${sourceVolumeId}`);
  if (snapshot.creationTime === undefined) problems.push("creation_time is not set (REQUIRED)");
  else if (snapshot.creationTime.seconds <= 0n) problems.push(`creation_time ${snapshot.creationTime.seconds}s is not a plausible time`);
  if (snapshot.sizeBytes < 0n) problems.push(`size_bytes ${snapshot.sizeBytes} is negative`);
  return problems;
}

export function timestampText(snapshot: Snapshot): string {
  const t = snapshot.creationTime;
  return t === undefined ? "unset" : `${t.seconds}.${String(t.nanos).padStart(9, "0")}`;
}

/** Every segment map of a volume's topology, for comparisons in messages. */
export function describeVolume(volume: Volume): string {
  return JSON.stringify({
    volume_id: volume.volumeId,
    capacity_bytes: volume.capacityBytes.toString(),
    volume_context: volume.volumeContext,
    accessible_topology: volume.accessibleTopology.map((t) => t.segments),
  });
}

/**
 * First-attempt deadlines for the retry checks: short enough to cut an
 * operation at every stage of its work (before, during and after the slow
 * part, such as formatting), in small steps.
 */
export const DEADLINE_SWEEP_MS: readonly number[] = [
  ...Array.from({ length: 25 }, (_, i) => 2 + i * 4),
  ...Array.from({ length: 15 }, (_, i) => 120 + i * 20),
];

/**
 * Call with each deadline of the sweep, as a CO whose calls time out, until
 * one attempt completes. Between attempts the driver gets time to notice the
 * cancellation (a CO backs off too), so every attempt starts from what the
 * previous one left; ABORTED (the previous attempt still running) repeats the
 * same deadline. Errors of cut attempts are expected and ignored here: the
 * final, unhurried call must succeed.
 */
export async function sweepDeadlines(call: (timeoutMs: number) => Promise<unknown>): Promise<{ cut: number }> {
  let cut = 0;
  for (const timeoutMs of DEADLINE_SWEEP_MS) {
    for (let busy = 0; ; busy++) {
      const result = await outcome(call(timeoutMs));
      if (result.ok) return { cut };
      if (result.code === Code.Aborted && busy < 20) {
        await sleep(100);
        continue;
      }
      cut++;
      await sleep(timeoutMs + 50);
      break;
    }
  }
  return { cut };
}

/** The same request without a short deadline, retried while the driver answers ABORTED (an earlier attempt still running). */
export async function settle<T>(what: string, call: () => Promise<T>): Promise<T> {
  for (let delay = 100; ; delay *= 2) {
    const result = await outcome(call());
    if (result.ok) return result.value;
    if (result.code !== Code.Aborted || delay > 10_000) fail(`${what}: expected OK, got ${describeOutcome(result)}`);
    await sleep(delay);
  }
}
