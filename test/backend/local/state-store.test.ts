import { execFileSync } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { StateStore } from "../../../src/backend/local/state-store.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";

// The metadata file: atomic, serialised updates; a failed update changes nothing; damage is refused, not guessed at.

let dir: string;
let k = 0;
const fresh = async () => {
  const d = join(dir, `s${++k}`);
  await mkdir(d, { recursive: true });
  return join(d, "state.json");
};
const allowFresh = { allowFresh: async () => undefined };

beforeAll(async () => {
  dir = await makeTestDir("local-state");
});
afterAll(() => removeTestDir(dir));

function volume(id: string) {
  return {
    id,
    name: id,
    phase: "ready" as const,
    sizeBytes: 1,
    accessTypes: [],
    fsType: "",
    parameters: {},
    createdAt: new Date(0).toISOString(),
    listPosition: 1,
    attachments: [],
    frozenMounts: [],
  };
}

describe("StateStore", () => {
  it("starts empty, persists every update, and reloads what it wrote", async () => {
    const path = await fresh();
    const store = await StateStore.open(path, allowFresh);
    expect(store.state).toEqual({ format: 1, lastListPosition: 0, volumes: {}, snapshots: {}, groups: {} });
    await store.update((draft) => {
      draft.volumes["vol-a"] = volume("vol-a");
      draft.lastListPosition = 1;
    });
    const reloaded = await StateStore.open(path, { allowFresh: () => Promise.reject(new Error("must not start fresh")) });
    expect(reloaded.state.volumes["vol-a"]?.name).toBe("vol-a");
    expect(JSON.parse(await readFile(path, "utf8"))).toEqual(reloaded.state);
  });

  it("applies concurrent updates one at a time, in order, none lost", async () => {
    const store = await StateStore.open(await fresh(), allowFresh);
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        store.update(async (draft) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          draft.lastListPosition += 1;
          draft.volumes[`vol-${i}`] = volume(`vol-${i}`);
          order.push(i);
        }),
      ),
    );
    expect(order).toEqual(Array.from({ length: 25 }, (_, i) => i));
    expect(store.state.lastListPosition).toBe(25);
    expect(Object.keys(store.state.volumes)).toHaveLength(25);
  });

  it("changes nothing, in memory or on disk, when an update throws", async () => {
    const path = await fresh();
    const store = await StateStore.open(path, allowFresh);
    await store.update((draft) => {
      draft.volumes["vol-keep"] = volume("vol-keep");
    });
    const before = await readFile(path, "utf8");
    await expect(
      store.update((draft) => {
        delete draft.volumes["vol-keep"];
        throw new Error("refused");
      }),
    ).rejects.toThrow("refused");
    expect(store.state.volumes["vol-keep"]).toBeDefined();
    expect(await readFile(path, "utf8")).toBe(before);
    // The queue keeps working after a failure.
    await store.update((draft) => {
      draft.lastListPosition = 7;
    });
    expect(store.state.lastListPosition).toBe(7);
  });

  it("changes nothing when the write itself fails (immutable directory), and recovers afterwards", { tags: ["needs-root"] }, async () => {
    const path = await fresh();
    const store = await StateStore.open(path, allowFresh);
    const before = await readFile(path, "utf8");
    const parent = join(path, "..");
    execFileSync("chattr", ["+i", parent]);
    try {
      await expect(
        store.update((draft) => {
          draft.volumes["vol-x"] = volume("vol-x");
        }),
      ).rejects.toThrow(/EPERM|operation not permitted/i);
    } finally {
      execFileSync("chattr", ["-i", parent]);
    }
    expect(store.state.volumes["vol-x"]).toBeUndefined();
    expect(await readFile(path, "utf8")).toBe(before);
    await store.update((draft) => {
      draft.volumes["vol-y"] = volume("vol-y");
    });
    expect(Object.keys(JSON.parse(await readFile(path, "utf8")).volumes)).toEqual(["vol-y"]);
  });

  it("removes temporary files of interrupted writes and never leaves its own", async () => {
    const path = await fresh();
    await writeFile(`${path}.tmp-123-abcd`, "{half");
    const store = await StateStore.open(path, allowFresh);
    await store.update((draft) => {
      draft.lastListPosition = 3;
    });
    expect(await readdir(join(path, ".."))).toEqual(["state.json"]);
  });

  it("refuses damaged metadata with a message saying what to do", async () => {
    const path = await fresh();
    await writeFile(path, "{not json");
    await expect(StateStore.open(path, allowFresh)).rejects.toThrow(/not valid JSON.*restore it from a backup/);
    await writeFile(path, JSON.stringify({ format: 9, lastListPosition: 0, volumes: {}, snapshots: {} }));
    await expect(StateStore.open(path, allowFresh)).rejects.toThrow(/format 9 is not 1/);
    await writeFile(path, JSON.stringify({ format: 1, lastListPosition: 0, volumes: { a: { id: "b" } }, snapshots: {} }));
    await expect(StateStore.open(path, allowFresh)).rejects.toThrow(/volume a is malformed/);
  });
});
