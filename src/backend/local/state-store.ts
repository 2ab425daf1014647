import { readdir, readFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { removeIfExists, writeFileAtomic } from "./durable-files.js";
import { checkState, emptyState, type LocalState } from "./state.js";

/** A deeply read-only view of the state, for readers. */
export type StateView = {
  readonly lastListPosition: number;
  readonly volumes: Readonly<LocalState["volumes"]>;
  readonly snapshots: Readonly<LocalState["snapshots"]>;
  readonly groups?: Readonly<NonNullable<LocalState["groups"]>>;
};

/**
 * The metadata file and its in-memory copy. Changes are serialised: each
 * update works on a copy of the state, and the copy replaces the state only
 * once it is durably on disk (written atomically), so readers never see a
 * change that a crash could still undo, and a failed write changes nothing.
 */
export class StateStore {
  readonly #path: string;
  #state: LocalState;
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(path: string, state: LocalState) {
    this.#path = path;
    this.#state = state;
  }

  /**
   * Load the state file, or start an empty one when `fresh` (the caller has
   * checked there is nothing it would lose track of). Leftover temporary files
   * of interrupted writes are removed.
   */
  static async open(path: string, options: { allowFresh: () => Promise<void> }): Promise<StateStore> {
    const dir = dirname(path);
    const tempPrefix = `${basename(path)}.tmp-`;
    for (const name of await readdir(dir)) {
      if (name.startsWith(tempPrefix)) await removeIfExists(join(dir, name));
    }
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
    if (text === undefined) {
      await options.allowFresh();
      const store = new StateStore(path, emptyState());
      await writeFileAtomic(path, store.#serialise(store.#state));
      return store;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${path} is not valid JSON (${(err as Error).message}); restore it from a backup or move the data dir aside`);
    }
    try {
      return new StateStore(path, checkState(parsed));
    } catch (err) {
      throw new Error(`${path}: ${(err as Error).message}; restore it from a backup or move the data dir aside`);
    }
  }

  get state(): StateView {
    return this.#state;
  }

  /**
   * Apply `change` to a copy of the state and make it durable. Updates run one
   * at a time, in call order; `change` may be async (it can check capacity or
   * touch files while no other update runs). If it throws, nothing changes.
   */
  update<T>(change: (draft: LocalState) => T | Promise<T>): Promise<T> {
    const run = async (): Promise<T> => {
      const draft = structuredClone(this.#state);
      const result = await change(draft);
      const before = this.#serialise(this.#state);
      const after = this.#serialise(draft);
      if (after !== before) {
        await writeFileAtomic(this.#path, after);
        this.#state = draft;
      }
      return result;
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => undefined);
    return next;
  }

  #serialise(state: LocalState): string {
    return `${JSON.stringify(state, null, 1)}\n`;
  }
}
