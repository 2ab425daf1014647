import { Aborted } from "../errors.js";

/** The key of operations on one volume, shared by the controller and, with --node-deployment, the node's storage growth. */
export const volumeKey = (volumeId: string): string => `volume:${volumeId}`;

/**
 * Keys of operations in progress (a volume id, a volume name, a snapshot name),
 * each with the operation that holds it. A second operation on a held key is
 * answered ABORTED at once, as the CSI spec allows, instead of running
 * concurrently with the first; the CO retries it with back-off.
 */
export class InFlight {
  readonly #held = new Map<string, string>();

  /** Run `fn` while holding every key; release them on every exit path. */
  async run<T>(keys: readonly string[], operation: string, fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(keys)];
    for (const key of unique) {
      const holder = this.#held.get(key);
      if (holder !== undefined) {
        throw Aborted("%s is already in progress for %s; retry once it has finished", holder, key);
      }
    }
    for (const key of unique) this.#held.set(key, operation);
    try {
      return await fn();
    } finally {
      for (const key of unique) this.#held.delete(key);
    }
  }

  /** The operation currently holding a key, if any. */
  holder(key: string): string | undefined {
    return this.#held.get(key);
  }

  get size(): number {
    return this.#held.size;
  }
}
