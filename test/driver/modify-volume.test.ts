// @module-tag needs-root
import { createHash } from "node:crypto";
import { mkdir, open, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { stateFilePath, volumeImagePath } from "../../src/backend/local/layout.js";
import { ControllerServiceCapability_RPC_Type as Rpc } from "../../src/gen/csi/v1/csi_pb.js";
import { cleanHost, hostLeaks } from "../support/host-leaks.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  blockCapability,
  Code,
  type ControllerHarness,
  controllerConfig,
  expectCode,
  MiB,
  mountCapability,
  NODE_ID,
  startController,
} from "./controller-harness.js";
import { sh } from "./node-harness.js";

// ControllerModifyVolume on the local backend, for real: `provisioning` thin <-> thick on images in a data dir of
// its own (a 256 MiB ext4 filesystem on a loop device, so the pool's limits are reached deterministically), offline
// and on a mounted volume.

const POOL_BYTES = 256 * MiB;

let dir: string;
let dataDir: string;
let h: ControllerHarness;
beforeAll(async () => {
  dir = await makeTestDir("modify-volume");
  dataDir = join(dir, "data");
  await mkdir(dataDir, { recursive: true });
  const pool = join(dir, "pool.img");
  await sh("truncate", "-s", String(POOL_BYTES), pool);
  await sh("mkfs.ext4", "-q", "-F", "-m", "0", pool);
  await sh("mount", "-o", "loop", pool, dataDir);
  // All-in-one, promising up to 4x the disk to thin volumes.
  h = await startController(dir, ["--mode", "all", "--overcommit-ratio", "4"]);
});
afterEach(async () => {
  // Only the volumes' own mounts and loop devices count: the pool's filesystem stays until the end.
  const left = (await hostLeaks(dir)).filter((entry) => entry !== `mount ${dataDir}` && !entry.endsWith("pool.img"));
  expect(left).toEqual([]);
});
afterAll(async () => {
  await h?.stop();
  // Unmounts the pool too and detaches its loop device.
  await cleanHost(dir);
  await removeTestDir(dir);
});

async function allocated(volumeId: string): Promise<number> {
  return (await stat(volumeImagePath(dataDir, volumeId))).blocks * 512;
}

async function checksum(volumeId: string): Promise<string> {
  return createHash("sha256")
    .update(await readFile(volumeImagePath(dataDir, volumeId)))
    .digest("hex");
}

async function recorded(volumeId: string): Promise<{ provisioning?: string } | undefined> {
  const state = JSON.parse(await readFile(stateFilePath(dataDir), "utf8")) as { volumes: Record<string, { provisioning?: string }> };
  return state.volumes[volumeId];
}

/** Write `count` 64 KiB runs of non-zero bytes at 1 MiB steps, as an application would leave data. */
async function scribble(volumeId: string, count: number): Promise<void> {
  const handle = await open(volumeImagePath(dataDir, volumeId), "r+");
  try {
    for (let i = 0; i < count; i++) await handle.write(Buffer.alloc(64 * 1024, i + 1), 0, 64 * 1024, i * MiB);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function create(
  name: string,
  sizeBytes: number,
  extra: { parameters?: Record<string, string>; mutableParameters?: Record<string, string> } = {},
) {
  const { volume } = await h.clients.controller.createVolume({
    name,
    capacityRange: { requiredBytes: BigInt(sizeBytes) },
    volumeCapabilities: [mountCapability("ext4")],
    ...extra,
  });
  return volume?.volumeId ?? "";
}

async function available(): Promise<bigint> {
  return (await h.clients.controller.getCapacity({ volumeCapabilities: [mountCapability("ext4")] })).availableCapacity;
}

const modify = (volumeId: string, provisioning: string) =>
  h.clients.controller.controllerModifyVolume({ volumeId, mutableParameters: { provisioning } });

describe("ControllerModifyVolume: provisioning thin | thick (local backend)", () => {
  it("is advertised, with mutable_parameters accepted at creation", async () => {
    const caps = await h.clients.controller.controllerGetCapabilities({});
    expect(caps.capabilities.some((c) => c.type.case === "rpc" && c.type.value.type === Rpc.MODIFY_VOLUME)).toBe(true);
    const id = await create("thick-at-birth", 16 * MiB, { mutableParameters: { provisioning: "thick" } });
    expect(await allocated(id)).toBeGreaterThanOrEqual(16 * MiB);
    expect((await recorded(id))?.provisioning).toBe("thick");
    const viaClass = await create("thick-by-class", 8 * MiB, { parameters: { provisioning: "thick" } });
    expect(await allocated(viaClass)).toBeGreaterThanOrEqual(8 * MiB);
    await h.clients.controller.deleteVolume({ volumeId: id });
    await h.clients.controller.deleteVolume({ volumeId: viaClass });
  });

  it("thick allocates every block and thin gives the zeroed ones back, the image byte-identical both ways; both idempotent", async () => {
    const id = await create("round-trip", 32 * MiB);
    await scribble(id, 4);
    const before = await checksum(id);
    const thinAllocation = await allocated(id);
    expect(thinAllocation).toBeLessThan(2 * MiB);
    const capacityThin = await available();

    await modify(id, "thick");
    await modify(id, "thick");
    expect(await allocated(id)).toBeGreaterThanOrEqual(32 * MiB);
    expect(await checksum(id)).toBe(before);
    // The pool counts a thick volume's whole size as used, outside the overcommit ratio: less can be promised.
    expect(await available()).toBeLessThan(capacityThin);

    await modify(id, "thin");
    await modify(id, "thin");
    // What it held when it was thin (plus, at most, a block of the filesystem's extent tree).
    expect(await allocated(id)).toBeLessThanOrEqual(thinAllocation + 64 * 1024);
    expect(await checksum(id)).toBe(before);
    expect((await recorded(id))?.provisioning).toBeUndefined();
    expect(await available()).toBe(capacityThin);
    await h.clients.controller.deleteVolume({ volumeId: id });
  });

  it("thick is refused with RESOURCE_EXHAUSTED when the disk cannot hold the whole volume, and nothing changes", async () => {
    // Thin, 300 MiB fits the 4x overcommit of a 256 MiB disk; thick cannot.
    const id = await create("too-big-for-thick", 300 * MiB);
    await scribble(id, 2);
    const before = await allocated(id);
    await expectCode(modify(id, "thick"), Code.ResourceExhausted, /thick volume/);
    expect((await recorded(id))?.provisioning).toBeUndefined();
    expect(await allocated(id)).toBe(before);
    await h.clients.controller.deleteVolume({ volumeId: id });
    // A thick creation of the same size is refused the same way.
    await expectCode(create("thick-too-big", 300 * MiB, { mutableParameters: { provisioning: "thick" } }), Code.ResourceExhausted, /thick/);
  });

  it("unknown keys or values are INVALID_ARGUMENT naming them, before anything is looked up or changed", async () => {
    const id = await create("bad-parameters", 8 * MiB);
    const state = await readFile(stateFilePath(dataDir), "utf8");
    await expectCode(
      h.clients.controller.controllerModifyVolume({ volumeId: id, mutableParameters: { iops: "3000" } }),
      Code.InvalidArgument,
      /"iops"/,
    );
    await expectCode(modify(id, "medium"), Code.InvalidArgument, /thin or thick/);
    await expectCode(modify("vol-00000000-0000-4000-8000-000000000000", "bogus"), Code.InvalidArgument, /thin or thick/);
    await expectCode(modify("vol-00000000-0000-4000-8000-000000000000", "thick"), Code.NotFound);
    await expectCode(
      create("bad-create", 8 * MiB, { mutableParameters: { provisioning: "sparse" } }),
      Code.InvalidArgument,
      /thin or thick/,
    );
    expect(await readFile(stateFilePath(dataDir), "utf8")).toBe(state);
    await h.clients.controller.deleteVolume({ volumeId: id });
  });

  it("works online on a mounted volume (the filesystem discards its free blocks), and waits for a raw block volume to be unstaged", async () => {
    const id = await create("online", 64 * MiB);
    const staging = join(dir, "online-staging");
    const { publishContext } = await h.clients.controller.controllerPublishVolume({
      volumeId: id,
      nodeId: NODE_ID,
      volumeCapability: mountCapability("ext4"),
    });
    await h.clients.node.nodeStageVolume({
      volumeId: id,
      stagingTargetPath: staging,
      volumeCapability: mountCapability("ext4"),
      publishContext,
    });
    try {
      const file = join(staging, "data.bin");
      const content = Buffer.alloc(4 * MiB, 7);
      await sh("sh", "-c", `head -c ${4 * MiB} /dev/zero | tr '\\0' '\\007' > ${file} && sync`);
      await modify(id, "thick");
      expect(await allocated(id)).toBeGreaterThanOrEqual(64 * MiB);
      await modify(id, "thin");
      expect(await allocated(id)).toBeLessThan(32 * MiB);
      expect((await readFile(file)).equals(content)).toBe(true);
    } finally {
      await h.clients.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
      await h.clients.controller.controllerUnpublishVolume({ volumeId: id, nodeId: NODE_ID });
    }
    await h.clients.controller.deleteVolume({ volumeId: id });

    const raw = await h.clients.controller.createVolume({
      name: "raw",
      capacityRange: { requiredBytes: BigInt(16 * MiB) },
      volumeCapabilities: [blockCapability()],
    });
    const rawId = raw.volume?.volumeId ?? "";
    const rawStaging = join(dir, "raw-staging");
    const published = await h.clients.controller.controllerPublishVolume({
      volumeId: rawId,
      nodeId: NODE_ID,
      volumeCapability: blockCapability(),
    });
    await h.clients.node.nodeStageVolume({
      volumeId: rawId,
      stagingTargetPath: rawStaging,
      volumeCapability: blockCapability(),
      publishContext: published.publishContext,
    });
    try {
      await modify(rawId, "thick");
      await expectCode(modify(rawId, "thin"), Code.FailedPrecondition, /raw block device/);
    } finally {
      await h.clients.node.nodeUnstageVolume({ volumeId: rawId, stagingTargetPath: rawStaging });
      await h.clients.controller.controllerUnpublishVolume({ volumeId: rawId, nodeId: NODE_ID });
    }
    await modify(rawId, "thin");
    expect(await allocated(rawId)).toBeLessThan(MiB);
    await h.clients.controller.deleteVolume({ volumeId: rawId });
  });

  it("is not offered with --node-deployment (no cluster-wide resizer can reach a node's instance); provisioning is a StorageClass parameter there", async () => {
    const config = controllerConfig(dir, ["--mode", "all", "--node-deployment"]);
    expect(config.nodeDeployment).toBe(true);
    const { controllerOffer } = await import("../../src/driver/controller-capabilities.js");
    const { LOCAL_FEATURES } = await import("../../src/backend/local/controller.js");
    expect(controllerOffer(LOCAL_FEATURES, config).modifyVolume).toBe(false);
    expect(controllerOffer(LOCAL_FEATURES, h.config).modifyVolume).toBe(true);
  });
});
