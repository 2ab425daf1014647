import { open, stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { snapshotImagePath, volumeImagePath } from "../../../src/backend/local/layout.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { GiB, MiB, mountCapability, startController, type ControllerHarness } from "../../driver/controller-harness.js";
import { allocatedBytes, fileDigest, readAt, writePattern } from "./local-fixtures.js";

// What snapshots, restores and clones contain, and what they occupy on disk.

let dir: string;
let h: ControllerHarness;

beforeAll(async () => {
  dir = await makeTestDir("local-content");
  h = await startController(dir);
});
afterAll(async () => {
  await h?.stop();
  await removeTestDir(dir);
});

const createVolume = (
  name: string,
  sizeBytes: number,
  source?: { case: "snapshot"; value: { snapshotId: string } } | { case: "volume"; value: { volumeId: string } },
) =>
  h.clients.controller.createVolume({
    name,
    volumeCapabilities: [mountCapability()],
    capacityRange: { requiredBytes: BigInt(sizeBytes) },
    ...(source ? { volumeContentSource: { type: source } } : {}),
  });

describe("content", () => {
  it("a restore holds exactly the snapshot's bytes, and later writes to the volume do not reach the snapshot", async () => {
    const { volume } = await createVolume("content-src", 256 * MiB);
    const image = volumeImagePath(h.dataDir, volume?.volumeId ?? "");
    const offsets = [0, 64 * 1024 + 4096, 17 * MiB + 123, 128 * MiB, 256 * MiB - 64 * 1024];
    const written = await writePattern(image, offsets);
    const digest = await fileDigest(image);

    const { snapshot } = await h.clients.controller.createSnapshot({ name: "content-snap", sourceVolumeId: volume?.volumeId ?? "" });
    const snapImage = snapshotImagePath(h.dataDir, snapshot?.snapshotId ?? "");
    expect(await fileDigest(snapImage)).toBe(digest);

    // The source changes after the cut: the snapshot does not.
    await writePattern(image, [0, 128 * MiB]);
    expect(await fileDigest(snapImage)).toBe(digest);

    const { volume: restored } = await createVolume("content-restore", 256 * MiB, {
      case: "snapshot",
      value: { snapshotId: snapshot?.snapshotId ?? "" },
    });
    const restoredImage = volumeImagePath(h.dataDir, restored?.volumeId ?? "");
    expect(await fileDigest(restoredImage)).toBe(digest);
    for (const [offset, data] of written) expect((await readAt(restoredImage, offset, data.length)).equals(data)).toBe(true);

    // Restored into a bigger volume: the same bytes, then zeros.
    const { volume: bigger } = await createVolume("content-restore-big", 512 * MiB, {
      case: "snapshot",
      value: { snapshotId: snapshot?.snapshotId ?? "" },
    });
    const biggerImage = volumeImagePath(h.dataDir, bigger?.volumeId ?? "");
    expect((await stat(biggerImage)).size).toBe(512 * MiB);
    for (const [offset, data] of written) expect((await readAt(biggerImage, offset, data.length)).equals(data)).toBe(true);
    expect((await readAt(biggerImage, 300 * MiB, 4096)).equals(Buffer.alloc(4096))).toBe(true);
  });

  it("a clone holds its source's bytes at the time of cloning and is independent of it afterwards", async () => {
    const { volume } = await createVolume("clone-src", 64 * MiB);
    const image = volumeImagePath(h.dataDir, volume?.volumeId ?? "");
    await writePattern(image, [MiB, 33 * MiB]);
    const digest = await fileDigest(image);
    const { volume: clone } = await createVolume("clone", 64 * MiB, { case: "volume", value: { volumeId: volume?.volumeId ?? "" } });
    const cloneImage = volumeImagePath(h.dataDir, clone?.volumeId ?? "");
    expect(await fileDigest(cloneImage)).toBe(digest);
    await writePattern(cloneImage, [MiB]);
    expect(await fileDigest(image)).toBe(digest);
    await h.clients.controller.deleteVolume({ volumeId: volume?.volumeId ?? "" });
    expect((await stat(cloneImage)).size).toBe(64 * MiB);
  });
});

describe("sparseness", () => {
  it("a snapshot and a restore of a mostly empty 1 GiB volume occupy about what was written, not 1 GiB", async () => {
    const { volume } = await createVolume("sparse-src", GiB);
    const image = volumeImagePath(h.dataDir, volume?.volumeId ?? "");
    // 2 MiB of data in a 1 GiB volume, plus 1 MiB of explicitly written zeros.
    await writePattern(image, [0, 700 * MiB], MiB);
    const handle = await open(image, "r+");
    await handle.write(Buffer.alloc(MiB), 0, MiB, 300 * MiB);
    await handle.close();
    const sourceAllocated = await allocatedBytes(image);
    expect(sourceAllocated).toBeGreaterThanOrEqual(3 * MiB);
    expect(sourceAllocated).toBeLessThan(8 * MiB);

    const { snapshot } = await h.clients.controller.createSnapshot({ name: "sparse-snap", sourceVolumeId: volume?.volumeId ?? "" });
    const snapImage = snapshotImagePath(h.dataDir, snapshot?.snapshotId ?? "");
    const snapStats = await stat(snapImage);
    expect(snapStats.size).toBe(GiB);
    // The data is copied; holes and runs of zeros are not written.
    expect(snapStats.blocks * 512).toBeGreaterThanOrEqual(2 * MiB);
    expect(snapStats.blocks * 512).toBeLessThanOrEqual(sourceAllocated);

    const { volume: restored } = await createVolume("sparse-restore", GiB, {
      case: "snapshot",
      value: { snapshotId: snapshot?.snapshotId ?? "" },
    });
    const restoredImage = volumeImagePath(h.dataDir, restored?.volumeId ?? "");
    expect(await allocatedBytes(restoredImage)).toBeLessThanOrEqual(sourceAllocated);
    expect(await fileDigest(restoredImage)).toBe(await fileDigest(image));
    console.info(
      `sparse copy of a 1 GiB volume: source ${sourceAllocated / MiB} MiB allocated, snapshot ${(snapStats.blocks * 512) / MiB} MiB, restore ${(await allocatedBytes(restoredImage)) / MiB} MiB`,
    );
  });
});
