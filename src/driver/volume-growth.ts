import type { ControllerBackend } from "../backend/backend.js";
import { NotFound } from "../errors.js";
import { sizeForExpansion, type RequestedRange } from "./capacity.js";
import { volumeKey, type InFlight } from "./inflight.js";

/**
 * Grow a volume's storage to what a capacity range asks: ControllerExpandVolume,
 * and NodeExpandVolume when the node owns the storage (--node-deployment). One
 * place sizes the request (rounding, limits: OUT_OF_RANGE) and the backend grows
 * it (pool capacity: RESOURCE_EXHAUSTED); a volume already big enough is left
 * as it is, so a retry after a crash in between finishes the job. Returns the
 * volume's capacity afterwards. The caller holds the volume's in-flight key.
 */
export async function growVolumeStorage(
  backend: ControllerBackend,
  volumeId: string,
  range: RequestedRange | undefined,
  signal: AbortSignal,
): Promise<number> {
  const volume = await backend.getVolume(volumeId, signal);
  if (!volume) throw NotFound("volume %s does not exist", volumeId);
  const target = sizeForExpansion(range, backend.sizeRules, volume.capacityBytes);
  return target.grows ? backend.expandVolume(volumeId, target.sizeBytes, signal) : volume.capacityBytes;
}

/** With --node-deployment, the node's own pool, and the controller's operations in progress on it. */
export interface NodeOwnedStorage {
  readonly backend: ControllerBackend;
  readonly inflight: InFlight;
}

/**
 * NodeExpandVolume's first step with --node-deployment: grow the image under
 * the controller's key for the volume, so it never runs beside a snapshot,
 * clone or deletion of the same volume (ABORTED, and kubelet retries).
 */
export function growOwnedStorage(
  storage: NodeOwnedStorage,
  volumeId: string,
  range: RequestedRange | undefined,
  signal: AbortSignal,
): Promise<number> {
  return storage.inflight.run([volumeKey(volumeId)], "NodeExpandVolume", () => growVolumeStorage(storage.backend, volumeId, range, signal));
}
