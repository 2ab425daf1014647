import { describe, expect, it } from "vitest";
import { useFakeDrivers, type FakeDriver } from "../fakes/fake-driver.js";
import { Code, expectCode, mountCapability } from "../driver/controller-harness.js";

// ListVolumes and ListSnapshots through the service: max_entries, tokens passed through, every object once; snapshot rules.

const fakeDriver = useFakeDrivers("fast-ctl-listing");

async function createVolumes(d: FakeDriver, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const { volume } = await d.clients.controller.createVolume({ name: `vol-${i}`, volumeCapabilities: [mountCapability()] });
    ids.push(volume?.volumeId ?? "");
  }
  return ids;
}

async function pageVolumes(d: FakeDriver, maxEntries: number): Promise<string[]> {
  const seen: string[] = [];
  let startingToken = "";
  for (let page = 0; page < 100; page++) {
    const res = await d.clients.controller.listVolumes({ maxEntries, startingToken });
    expect(res.entries.length).toBeLessThanOrEqual(maxEntries);
    seen.push(...res.entries.map((e) => e.volume?.volumeId ?? ""));
    startingToken = res.nextToken;
    if (startingToken === "") return seen;
  }
  throw new Error("paging did not end");
}

describe("ListVolumes", () => {
  it("honours max_entries and returns every volume exactly once across pages", async () => {
    const d = await fakeDriver();
    const ids = await createVolumes(d, 11);
    for (const max of [1, 3, 10, 11, 50]) expect(await pageVolumes(d, max)).toEqual(ids);
    expect((await d.clients.controller.listVolumes({ maxEntries: 11 })).nextToken).toBe("");
  });

  it("answers ABORTED for a token the backend did not issue and INVALID_ARGUMENT for a negative max_entries", async () => {
    const d = await fakeDriver();
    await createVolumes(d, 2);
    await expectCode(d.clients.controller.listVolumes({ startingToken: "not-a-token" }), Code.Aborted);
    // A snapshot list's token is not a volume list's.
    await expectCode(d.clients.controller.listVolumes({ startingToken: "snapshots@1" }), Code.Aborted);
    await expectCode(d.clients.controller.listVolumes({ maxEntries: -1 }), Code.InvalidArgument, /max_entries/);
  });

  it("reports published nodes and conditions only when those capabilities are offered", async () => {
    const plain = await fakeDriver({ controller: { features: { listPublishedNodes: false, volumeCondition: false } } });
    await createVolumes(plain, 1);
    expect((await plain.clients.controller.listVolumes({})).entries[0]?.status).toBeUndefined();
    const alpha = await fakeDriver({ flags: ["--alpha-features", "volume-condition"] });
    const [volumeId = ""] = await createVolumes(alpha, 1);
    alpha.controllerBackend.setCondition(volumeId, { abnormal: false, message: "healthy" });
    const entry = (await alpha.clients.controller.listVolumes({})).entries[0];
    expect(entry?.status?.publishedNodeIds).toEqual([]);
    expect(entry?.status?.volumeCondition).toMatchObject({ abnormal: false, message: "healthy" });
  });
});

describe("snapshots", () => {
  it("returns the same snapshot for a repeated CreateSnapshot, ALREADY_EXISTS for the name with another source", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const [a = "", b = ""] = await createVolumes(d, 2);
    const first = await c.createSnapshot({ name: "daily", sourceVolumeId: a });
    expect(first.snapshot).toMatchObject({ sourceVolumeId: a, readyToUse: true });
    expect((await c.createSnapshot({ name: "daily", sourceVolumeId: a })).snapshot).toEqual(first.snapshot);
    await expectCode(c.createSnapshot({ name: "daily", sourceVolumeId: b }), Code.AlreadyExists, /not of volume/);
    await expectCode(c.createSnapshot({ name: "orphan", sourceVolumeId: "vol-9999" }), Code.NotFound);
    await expectCode(c.createSnapshot({ sourceVolumeId: a }), Code.InvalidArgument, /name/);
    await expectCode(c.createSnapshot({ name: "nameless-source" }), Code.InvalidArgument, /source_volume_id/);
    expect(d.controllerBackend.snapshotCount()).toBe(1);
  });

  it("pages, filters by source and by id, and deletes idempotently", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const [a = "", b = ""] = await createVolumes(d, 2);
    const ofA = [];
    for (let i = 0; i < 5; i++) ofA.push((await c.createSnapshot({ name: `a-${i}`, sourceVolumeId: a })).snapshot?.snapshotId ?? "");
    const ofB = (await c.createSnapshot({ name: "b-0", sourceVolumeId: b })).snapshot?.snapshotId ?? "";
    const seen: string[] = [];
    let startingToken = "";
    do {
      const res = await c.listSnapshots({ sourceVolumeId: a, maxEntries: 2, startingToken });
      seen.push(...res.entries.map((e) => e.snapshot?.snapshotId ?? ""));
      startingToken = res.nextToken;
    } while (startingToken !== "");
    expect(seen).toEqual(ofA);
    expect((await c.listSnapshots({ snapshotId: ofB })).entries.map((e) => e.snapshot?.sourceVolumeId)).toEqual([b]);
    expect((await c.listSnapshots({ snapshotId: "snap-9999" })).entries).toEqual([]);
    await expectCode(c.listSnapshots({ startingToken: "volumes@1" }), Code.Aborted);
    await c.deleteSnapshot({ snapshotId: ofB });
    await c.deleteSnapshot({ snapshotId: ofB });
    expect((await c.listSnapshots({})).entries).toHaveLength(5);
    await expectCode(c.deleteSnapshot({}), Code.InvalidArgument, /snapshot_id/);
  });
});
