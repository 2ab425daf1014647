import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, open, readdir, readFile, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { join } from "node:path";
import { expect } from "vitest";
import type { CsiClients } from "../../../src/csi/client.js";
import { snapshotsDir, stateFilePath, volumesDir } from "../../../src/backend/local/layout.js";
import type { LocalState } from "../../../src/backend/local/state.js";
import { DRIVER_ENTRY } from "../../support/driver-process.js";

/**
 * A private copy of the built CLI (dist/, which npm test builds first) under
 * `dir`, so a rebuild of dist/ while these tests run cannot pull it away from
 * under a process they spawn. Returns the command that runs it.
 */
export async function copyBuiltCli(dir: string): Promise<string[]> {
  if (!existsSync(DRIVER_ENTRY)) throw new Error(`${DRIVER_ENTRY} is missing: run npm run build first (npm test does)`);
  const target = join(dir, "cli");
  for (let attempt = 0; ; attempt++) {
    try {
      await cp(dirname(DRIVER_ENTRY), target, { recursive: true, force: true });
      if (existsSync(join(target, "do-csi-plugin.js"))) break;
    } catch (err) {
      if (attempt >= 20) throw err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return ["node", join(target, "do-csi-plugin.js")];
}

/** Write `length` random bytes at each offset of an image; returns what was written, for comparison. */
export async function writePattern(image: string, offsets: readonly number[], length = 64 * 1024): Promise<Map<number, Buffer>> {
  const written = new Map<number, Buffer>();
  const handle = await open(image, "r+");
  try {
    for (const offset of offsets) {
      const data = randomBytes(length);
      await handle.write(data, 0, data.length, offset);
      written.set(offset, data);
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return written;
}

export async function readAt(image: string, offset: number, length: number): Promise<Buffer> {
  const handle = await open(image, "r");
  try {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await handle.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

/** SHA-256 of a whole file, read in chunks (holes read as zeros). */
export async function fileDigest(path: string): Promise<string> {
  const hash = createHash("sha256");
  const handle = await open(path, "r");
  try {
    const buffer = Buffer.alloc(4 * 1024 * 1024);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest("hex");
}

export async function allocatedBytes(path: string): Promise<number> {
  return (await stat(path)).blocks * 512;
}

export async function readState(dataDir: string): Promise<LocalState> {
  return JSON.parse(await readFile(stateFilePath(dataDir), "utf8")) as LocalState;
}

/**
 * What a CO sees and what is on disk agree: every listed volume and snapshot
 * has a complete image of its size, every image belongs to a listed object,
 * no partial or temporary file is left and every record is ready.
 */
export async function expectConsistent(clients: CsiClients, dataDir: string): Promise<{ volumes: string[]; snapshots: string[] }> {
  const volumes = (await clients.controller.listVolumes({})).entries.map((e) => e.volume);
  const snapshots = (await clients.controller.listSnapshots({})).entries.map((e) => e.snapshot);
  const volumeIds = volumes.map((v) => v?.volumeId ?? "");
  const snapshotIds = snapshots.map((s) => s?.snapshotId ?? "");
  expect((await readdir(volumesDir(dataDir))).sort()).toEqual(volumeIds.map((id) => `${id}.img`).sort());
  expect((await readdir(snapshotsDir(dataDir))).sort()).toEqual(snapshotIds.map((id) => `${id}.img`).sort());
  for (const volume of volumes)
    expect((await stat(join(volumesDir(dataDir), `${volume?.volumeId}.img`))).size).toBe(Number(volume?.capacityBytes));
  for (const snapshot of snapshots)
    expect((await stat(join(snapshotsDir(dataDir), `${snapshot?.snapshotId}.img`))).size).toBe(Number(snapshot?.sizeBytes));
  const state = await readState(dataDir);
  expect(
    Object.values(state.volumes)
      .map((v) => v.phase)
      .filter((p) => p !== "ready"),
  ).toEqual([]);
  expect(
    Object.values(state.snapshots)
      .map((s) => s.phase)
      .filter((p) => p !== "ready"),
  ).toEqual([]);
  expect(Object.keys(state.volumes).sort()).toEqual([...volumeIds].sort());
  expect(Object.keys(state.snapshots).sort()).toEqual([...snapshotIds].sort());
  expect((await readdir(dataDir)).filter((n) => n.includes(".tmp-"))).toEqual([]);
  return { volumes: volumeIds, snapshots: snapshotIds };
}
