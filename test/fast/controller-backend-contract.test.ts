import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ControllerBackend, NewVolume } from "../../src/backend/backend.js";
import { openControllerBackend } from "../../src/backend/index.js";
import { parseCommandLine } from "../../src/cli/options.js";
import { silentLogger } from "../../src/log/logger.js";
import { MemoryControllerBackend } from "../fakes/memory-controller-backend.js";
import { expectCode } from "../support/expect-code.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { Code } from "../driver/controller-harness.js";

// The ControllerBackend contract (src/backend/backend.ts), checked the same way on the in-memory fake and on the
// local backend (which needs no root on the controller side): the fake the fast tier relies on behaves as a real backend.

const NODE = "node-1";

interface Subject {
  readonly name: string;
  open(dir: string): Promise<ControllerBackend>;
}

const SUBJECTS: Subject[] = [
  { name: "in-memory fake", open: async () => new MemoryControllerBackend({ nodes: [NODE] }) },
  {
    name: "local backend",
    open: (dir) =>
      openControllerBackend(
        parseCommandLine(
          [
            "--backend",
            "local",
            "--mode",
            "controller",
            "--data-dir",
            join(dir, "data"),
            "--node-id",
            NODE,
            "--endpoint",
            `unix://${join(dir, "csi.sock")}`,
          ],
          {},
          "test",
        ).config,
        silentLogger,
      ),
  },
];

describe.each(SUBJECTS)("ControllerBackend contract: $name", ({ name, open }) => {
  let dir: string;
  let backend: ControllerBackend;
  let n = 0;
  const signal = AbortSignal.timeout(60_000);

  beforeAll(async () => {
    dir = await makeTestDir(`contract-${name.replace(/\W+/g, "-")}`);
    backend = await open(dir);
  });
  afterAll(async () => {
    await backend?.close();
    await removeTestDir(dir);
  });

  const spec = (overrides: Partial<NewVolume> = {}): NewVolume => ({
    name: `contract-${++n}`,
    sizeBytes: backend.sizeRules.minBytes,
    accessTypes: ["mount"],
    fsType: "",
    parameters: {},
    mutableParameters: {},
    requisite: [],
    preferred: [],
    ...overrides,
  });

  it("finds a created volume by id and by name, and deletes idempotently", async () => {
    const volume = await backend.createVolume(spec(), signal);
    expect(volume.capacityBytes).toBeGreaterThanOrEqual(backend.sizeRules.minBytes);
    expect((await backend.getVolume(volume.id, signal))?.name).toBe(volume.name);
    expect((await backend.findVolumeByName(volume.name, signal))?.id).toBe(volume.id);
    await backend.deleteVolume(volume.id, signal);
    await backend.deleteVolume(volume.id, signal);
    await backend.deleteVolume("vol-never-issued", signal);
    expect(await backend.getVolume(volume.id, signal)).toBeUndefined();
    expect(await backend.findVolumeByName(volume.name, signal)).toBeUndefined();
  });

  it("attaches to a known node only, refuses to delete an attached volume, and detaches idempotently", async () => {
    const volume = await backend.createVolume(spec(), signal);
    const request = {
      volumeId: volume.id,
      nodeId: NODE,
      readonly: false,
      accessType: "mount" as const,
      singleNode: true,
      volumeContext: {},
    };
    await expectCode(backend.publishVolume({ ...request, volumeId: "vol-never-issued" }, signal), Code.NotFound);
    await expectCode(backend.publishVolume({ ...request, nodeId: "no-such-node" }, signal), Code.NotFound);
    const context = await backend.publishVolume(request, signal);
    expect(await backend.publishVolume(request, signal)).toEqual(context);
    expect((await backend.getVolume(volume.id, signal))?.publishedNodeIds).toEqual([NODE]);
    await expectCode(backend.deleteVolume(volume.id, signal), Code.FailedPrecondition);
    await backend.unpublishVolume(volume.id, "no-such-node", signal);
    expect((await backend.getVolume(volume.id, signal))?.publishedNodeIds).toEqual([NODE]);
    // An empty node id detaches from every node.
    await backend.unpublishVolume(volume.id, "", signal);
    await backend.unpublishVolume(volume.id, NODE, signal);
    await backend.unpublishVolume("vol-never-issued", NODE, signal);
    expect((await backend.getVolume(volume.id, signal))?.publishedNodeIds).toEqual([]);
    await backend.deleteVolume(volume.id, signal);
  });

  it("lists in a stable order across pages, and answers ABORTED for a token it did not issue", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await backend.createVolume(spec(), signal)).id);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await backend.listVolumes(2, token, signal);
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((v) => v.id));
      token = page.nextToken;
    } while (token !== "");
    expect(seen.filter((id) => ids.includes(id))).toEqual(ids);
    expect((await backend.listVolumes(0, "", signal)).items.map((v) => v.id)).toEqual(seen);
    await expectCode(backend.listVolumes(0, "not-a-token", signal), Code.Aborted);
    await expectCode(backend.listSnapshots({}, 0, "not-a-token", signal), Code.Aborted);
    for (const id of ids) await backend.deleteVolume(id, signal);
  });

  it("needs an existing source, grows volumes, and keeps snapshots findable and filterable", async () => {
    await expectCode(backend.createVolume(spec({ source: { kind: "volume", id: "vol-never-issued" } }), signal), Code.NotFound);
    const volume = await backend.createVolume(spec(), signal);
    const grown = await backend.expandVolume(volume.id, volume.capacityBytes * 2, signal);
    expect(grown).toBeGreaterThanOrEqual(volume.capacityBytes * 2);
    await expectCode(backend.expandVolume("vol-never-issued", grown, signal), Code.NotFound);
    const snapshot = await backend.createSnapshot({ name: `snap-${n}`, sourceVolumeId: volume.id, parameters: {} }, signal);
    expect(snapshot).toMatchObject({ sourceVolumeId: volume.id, sizeBytes: grown, readyToUse: true });
    expect((await backend.findSnapshotByName(snapshot.name, volume.id, signal))?.id).toBe(snapshot.id);
    expect((await backend.listSnapshots({ sourceVolumeId: volume.id }, 0, "", signal)).items.map((s) => s.id)).toEqual([snapshot.id]);
    expect((await backend.listSnapshots({ snapshotId: "snap-never-issued" }, 0, "", signal)).items).toEqual([]);
    await backend.deleteSnapshot(snapshot.id, signal);
    await backend.deleteSnapshot(snapshot.id, signal);
    expect(await backend.getSnapshot(snapshot.id, signal)).toBeUndefined();
    await backend.deleteVolume(volume.id, signal);
  });
});
