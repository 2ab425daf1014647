import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { availableBytes } from "../../../src/backend/local/pool-capacity.js";
import { decodePageToken, encodePageToken } from "../../../src/backend/local/page-token.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { Code, expectCode, GiB, MiB, mountCapability, startController, type ControllerHarness } from "../../driver/controller-harness.js";

describe("availableBytes", () => {
  const pool = {
    freeBytes: 100 * GiB,
    volumeLogicalBytes: 50 * GiB,
    volumeAllocatedBytes: 10 * GiB,
    thickAllocatedBytes: 0,
    snapshotAllocatedBytes: 5 * GiB,
  };

  it("without overcommit promises only what can really be written", () => {
    // 115 GiB usable (free + our allocation), 55 GiB promised (volumes' full sizes + snapshots).
    expect(availableBytes(pool, 1)).toBe(60 * GiB);
    // Writing every volume completely then needs 40 GiB more, and 60 GiB stay free: the two add up to what is free.
    expect(availableBytes(pool, 1) + (pool.volumeLogicalBytes - pool.volumeAllocatedBytes)).toBe(pool.freeBytes);
  });

  it("scales with the overcommit ratio, and never goes negative", () => {
    expect(availableBytes(pool, 2)).toBe(175 * GiB);
    expect(availableBytes(pool, 0.5)).toBe(2.5 * GiB);
    expect(availableBytes({ ...pool, volumeLogicalBytes: 500 * GiB }, 1)).toBe(0);
  });
});

describe("page tokens", () => {
  it("round-trip and reject anything else", () => {
    expect(decodePageToken("volumes", "", 10)).toBe(0);
    expect(decodePageToken("volumes", encodePageToken("volumes", 7), 10)).toBe(7);
    for (const token of [encodePageToken("snapshots", 7), encodePageToken("volumes", 11), "djEudm9sLjA", "a b", "=="]) {
      expect(() => decodePageToken("volumes", token, 10)).toThrow(/not a token this plugin issued/);
    }
  });
});

describe("capacity through the controller", () => {
  let dir: string;
  const running: ControllerHarness[] = [];
  beforeAll(async () => {
    dir = await makeTestDir("local-capacity");
  });
  afterAll(async () => {
    for (const h of running) await h.stop();
    await removeTestDir(dir);
  });
  const start = async (name: string, ratio: string) => {
    const h = await startController(join(dir, name), ["--overcommit-ratio", ratio]);
    running.push(h);
    return h;
  };

  it("is the data dir's free space scaled by --overcommit-ratio, and thin provisioning lets a volume exceed the disk", async () => {
    const one = await start("r1", "1");
    const two = await start("r2", "2");
    const fs = await statfs(one.dataDir);
    const free = fs.bavail * fs.bsize;
    const c1 = Number((await one.clients.controller.getCapacity({})).availableCapacity);
    const c2 = Number((await two.clients.controller.getCapacity({})).availableCapacity);
    // Other tests write to this filesystem meanwhile: allow 1 GiB of drift.
    expect(Math.abs(c1 - free)).toBeLessThan(GiB);
    expect(Math.abs(c2 - 2 * c1)).toBeLessThan(2 * GiB);

    const beyondDisk = BigInt(Math.floor((free * 1.25) / MiB) * MiB);
    const thin = await two.clients.controller.createVolume({
      name: "thin",
      volumeCapabilities: [mountCapability()],
      capacityRange: { requiredBytes: beyondDisk },
    });
    expect(thin.volume?.capacityBytes).toBe(beyondDisk);
    await expectCode(
      one.clients.controller.createVolume({
        name: "thick",
        volumeCapabilities: [mountCapability()],
        capacityRange: { requiredBytes: beyondDisk },
      }),
      Code.ResourceExhausted,
      /overcommit ratio 1/,
    );
    // The promise is remembered: the thin pool has less left, by the volume's full size.
    const c2after = Number((await two.clients.controller.getCapacity({})).availableCapacity);
    expect(Math.abs(c2 - Number(beyondDisk) - c2after)).toBeLessThan(2 * GiB);
  });

  it("a ratio below 1 keeps a reserve", async () => {
    const half = await start("r05", "0.5");
    const fs = await statfs(half.dataDir);
    const capacity = Number((await half.clients.controller.getCapacity({})).availableCapacity);
    expect(Math.abs(capacity - (fs.bavail * fs.bsize) / 2)).toBeLessThan(GiB);
  });
});
