import type { SnapshotRecord, VolumeRecord } from "./state.js";
import type { StateView } from "./state-store.js";

/**
 * Ready volumes and snapshots in listing order, built once per state (the
 * store replaces its state object on every change) so a page costs a binary
 * search and a slice instead of sorting everything: paging through 10,000
 * volumes allocates per page, not per volume.
 */
const volumeOrders = new WeakMap<StateView, readonly VolumeRecord[]>();
const snapshotOrders = new WeakMap<StateView, readonly SnapshotRecord[]>();

function inListOrder<T extends { readonly phase: string; readonly listPosition: number }>(records: Iterable<T>): T[] {
  return [...records].filter((r) => r.phase === "ready").sort((a, b) => a.listPosition - b.listPosition);
}

export function volumesInListOrder(state: StateView): readonly VolumeRecord[] {
  let order = volumeOrders.get(state);
  if (!order) {
    order = inListOrder(Object.values(state.volumes));
    volumeOrders.set(state, order);
  }
  return order;
}

export function snapshotsInListOrder(state: StateView): readonly SnapshotRecord[] {
  let order = snapshotOrders.get(state);
  if (!order) {
    order = inListOrder(Object.values(state.snapshots));
    snapshotOrders.set(state, order);
  }
  return order;
}

/** Up to `maxEntries` (0: all) records after position `after`, and whether more follow. */
export function pageAfter<T extends { readonly listPosition: number }>(
  ordered: readonly T[],
  after: number,
  maxEntries: number,
): { page: T[]; more: boolean } {
  let low = 0;
  let high = ordered.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if ((ordered[mid]?.listPosition ?? Infinity) <= after) low = mid + 1;
    else high = mid;
  }
  const end = maxEntries > 0 ? Math.min(ordered.length, low + maxEntries) : ordered.length;
  return { page: ordered.slice(low, end), more: end < ordered.length };
}
