import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeName, isRetryable } from "./expect.js";

interface Entry {
  readonly key: string;
  readonly description: string;
  readonly undo: () => Promise<void>;
}

/**
 * Everything a check created, undone in reverse order of creation when the
 * check ends, whatever its outcome: node publications before stagings before
 * controller publications, restored volumes before their snapshots before
 * their source volumes. A check that undoes something itself releases it.
 */
export class CleanupRegistry {
  readonly #entries: Entry[] = [];

  /** Register an undo step; a key already registered keeps its original place. */
  add(key: string, description: string, undo: () => Promise<void>): void {
    if (this.#entries.some((e) => e.key === key)) return;
    this.#entries.push({ key, description, undo });
  }

  release(key: string): void {
    const index = this.#entries.findIndex((e) => e.key === key);
    if (index !== -1) this.#entries.splice(index, 1);
  }

  has(key: string): boolean {
    return this.#entries.some((e) => e.key === key);
  }

  get size(): number {
    return this.#entries.length;
  }

  /**
   * Undo everything, newest first. A step that fails with a retryable code is
   * tried again a few times; a step that still fails is reported and the rest
   * go on. Returns the failures.
   */
  async runAll(): Promise<string[]> {
    const failures: string[] = [];
    while (this.#entries.length > 0) {
      const entry = this.#entries.pop();
      if (entry === undefined) break;
      const error = await attempt(entry.undo);
      if (error !== undefined) failures.push(`${entry.description}: ${error}`);
    }
    return failures;
  }
}

async function attempt(undo: () => Promise<void>): Promise<string | undefined> {
  let last = "";
  for (let i = 0; i < 4; i++) {
    try {
      await undo();
      return undefined;
    } catch (err) {
      if (err instanceof ConnectError) {
        // What is not found is not left behind (unstaging or unpublishing a deleted volume may say so).
        if (err.code === Code.NotFound) return undefined;
        last = `${codeName(err.code)} (${err.rawMessage})`;
        if (!isRetryable(err.code)) return last;
      } else {
        last = err instanceof Error ? err.message : String(err);
      }
      await sleep(250 * 2 ** i);
    }
  }
  return last;
}
