import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { Code, expectCode, MiB, mountCapability, startController, type ControllerHarness } from "./controller-harness.js";

// ListVolumes and ListSnapshots paging: opaque tokens, max_entries, every object exactly once.

let dir: string;
let h: ControllerHarness;
let n = 0;

beforeAll(async () => {
  dir = await makeTestDir("ctl-listing");
  h = await startController(dir);
});
afterAll(async () => {
  await h?.stop();
  await removeTestDir(dir);
});

async function createVolumes(count: number, prefix: string): Promise<string[]> {
  const created = await Promise.all(
    Array.from({ length: count }, () =>
      h.clients.controller.createVolume({
        name: `${prefix}-${++n}`,
        volumeCapabilities: [mountCapability()],
        capacityRange: { requiredBytes: BigInt(MiB) },
      }),
    ),
  );
  return created.map((c) => c.volume?.volumeId ?? "");
}

/** Page through ListVolumes, running `between` after each page; returns every id seen, in order. */
async function pageVolumes(maxEntries: number, between: (page: number) => Promise<void> = async () => undefined): Promise<string[]> {
  const seen: string[] = [];
  let token = "";
  for (let page = 0; page < 1000; page++) {
    const res = await h.clients.controller.listVolumes({ maxEntries, startingToken: token });
    expect(res.entries.length).toBeLessThanOrEqual(maxEntries);
    seen.push(...res.entries.map((e) => e.volume?.volumeId ?? ""));
    token = res.nextToken;
    if (token === "") return seen;
    await between(page);
  }
  throw new Error("paging did not end");
}

describe("ListVolumes", () => {
  it("honours max_entries and returns every volume exactly once across pages", async () => {
    const ids = await createVolumes(23, "page");
    const all = (await h.clients.controller.listVolumes({})).entries.map((e) => e.volume?.volumeId);
    expect(all).toEqual(expect.arrayContaining(ids));
    for (const max of [1, 5, 7, 23, 100]) {
      const seen = await pageVolumes(max);
      expect(seen).toEqual(all);
    }
    const exact = await h.clients.controller.listVolumes({ maxEntries: all.length });
    expect(exact.nextToken).toBe("");
  });

  it("keeps paging stable while volumes are created and deleted concurrently", async () => {
    const before = (await h.clients.controller.listVolumes({})).entries.map((e) => e.volume?.volumeId ?? "");
    const doomed = new Set(before.slice(-4));
    const createdDuring: string[] = [];
    const seen = await pageVolumes(4, async (page) => {
      // While the CO pages: new volumes appear (some concurrently with the next page request), and a few old ones go.
      const next = h.clients.controller.listVolumes({ maxEntries: 4 });
      createdDuring.push(...(await createVolumes(3, `during-${page}`)));
      await next;
      if (page === 1) for (const id of doomed) await h.clients.controller.deleteVolume({ volumeId: id });
    });
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) if (!doomed.has(id)) expect(seen).toContain(id);
    // Volumes created during the listing come after the ones that existed before it.
    const firstNew = seen.findIndex((id) => createdDuring.includes(id));
    expect(firstNew === -1 || seen.slice(firstNew).every((id) => createdDuring.includes(id))).toBe(true);
    expect(seen.filter((id) => createdDuring.includes(id)).length).toBeGreaterThan(0);
  });

  it("answers ABORTED for a token it did not issue and INVALID_ARGUMENT for a negative max_entries", async () => {
    await createVolumes(2, "tokens");
    const c = h.clients.controller;
    const { nextToken } = await c.listVolumes({ maxEntries: 1 });
    expect(nextToken).not.toBe("");
    for (const startingToken of [
      "garbage",
      "!!!",
      Buffer.from("v1.vol.999999999").toString("base64url"),
      Buffer.from("v1.vol.0").toString("base64url"),
      `${nextToken}!`,
      `x${nextToken}`,
    ]) {
      await expectCode(c.listVolumes({ startingToken }), Code.Aborted, /start again with an empty token/);
    }
    const snapshotsToken = Buffer.from("v1.snap.1").toString("base64url");
    await expectCode(c.listVolumes({ startingToken: snapshotsToken }), Code.Aborted);
    await expectCode(c.listVolumes({ maxEntries: -1 }), Code.InvalidArgument, /max_entries must not be negative/);
    // The issued token still works, and again (tokens are stable).
    const page1 = await c.listVolumes({ maxEntries: 1, startingToken: nextToken });
    const page1again = await c.listVolumes({ maxEntries: 1, startingToken: nextToken });
    expect(page1again.entries).toEqual(page1.entries);
  });

  it("keeps tokens valid across a restart", async () => {
    const { nextToken, entries } = await h.clients.controller.listVolumes({ maxEntries: 2 });
    const rest = await h.clients.controller.listVolumes({ startingToken: nextToken });
    await h.stop();
    h = await startController(dir);
    const after = await h.clients.controller.listVolumes({ startingToken: nextToken });
    expect(after.entries.map((e) => e.volume?.volumeId)).toEqual(rest.entries.map((e) => e.volume?.volumeId));
    expect(entries).toHaveLength(2);
  });
});

describe("ListSnapshots", () => {
  it("pages with max_entries, filters by source and id, and never lists twice", async () => {
    const [a, b] = await createVolumes(2, "snapsrc");
    const made: string[] = [];
    for (let i = 0; i < 7; i++) {
      const { snapshot } = await h.clients.controller.createSnapshot({
        name: `list-snap-${i}`,
        sourceVolumeId: i % 2 === 0 ? (a ?? "") : (b ?? ""),
      });
      made.push(snapshot?.snapshotId ?? "");
    }
    const seen: string[] = [];
    let token = "";
    do {
      const res = await h.clients.controller.listSnapshots({ maxEntries: 3, startingToken: token });
      expect(res.entries.length).toBeLessThanOrEqual(3);
      seen.push(...res.entries.map((e) => e.snapshot?.snapshotId ?? ""));
      token = res.nextToken;
    } while (token !== "");
    expect(seen).toEqual(made);

    const ofA = await h.clients.controller.listSnapshots({ sourceVolumeId: a });
    expect(ofA.entries.map((e) => e.snapshot?.snapshotId)).toEqual(made.filter((_, i) => i % 2 === 0));
    expect(ofA.entries.every((e) => e.snapshot?.sourceVolumeId === a && e.snapshot?.readyToUse)).toBe(true);
    const one = await h.clients.controller.listSnapshots({ snapshotId: made[3] });
    expect(one.entries.map((e) => e.snapshot?.snapshotId)).toEqual([made[3]]);
    const mismatch = await h.clients.controller.listSnapshots({ snapshotId: made[3], sourceVolumeId: a });
    expect(mismatch.entries).toEqual([]);
    expect((await h.clients.controller.listSnapshots({ snapshotId: "snap-missing" })).entries).toEqual([]);
    expect((await h.clients.controller.listSnapshots({ sourceVolumeId: "vol-missing" })).entries).toEqual([]);

    await expectCode(h.clients.controller.listSnapshots({ startingToken: "nope" }), Code.Aborted);
    await expectCode(h.clients.controller.listSnapshots({ startingToken: Buffer.from("v1.vol.1").toString("base64url") }), Code.Aborted);
    await expectCode(h.clients.controller.listSnapshots({ maxEntries: -3 }), Code.InvalidArgument, /max_entries/);
  });
});
