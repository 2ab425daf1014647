import { stat } from "node:fs/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { volumeImagePath } from "../../src/backend/local/layout.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import {
  blockCapability,
  Code,
  DRIVER,
  expectCode,
  GiB,
  MiB,
  Mode,
  mountCapability,
  NODE_ID,
  startController,
  type ControllerHarness,
} from "./controller-harness.js";

// CreateVolume, DeleteVolume and ControllerExpandVolume through the real gRPC stack and the local backend.

let dir: string;
let h: ControllerHarness;
let n = 0;
const uniqueName = (prefix: string) => `${prefix}-${++n}`;

beforeAll(async () => {
  dir = await makeTestDir("ctl-volumes");
  h = await startController(dir);
});
afterAll(async () => {
  await h?.stop();
  await removeTestDir(dir);
});

const create = (name: string, extra: Record<string, unknown> = {}) =>
  h.clients.controller.createVolume({ name, volumeCapabilities: [mountCapability()], ...extra });

describe("CreateVolume", () => {
  it("creates a sparse image of the default size, accessible from this node", async () => {
    const { volume } = await create(uniqueName("default"));
    expect(volume?.volumeId).toMatch(/^vol-[0-9a-f-]{36}\.test-node$/);
    expect(volume?.capacityBytes).toBe(BigInt(GiB));
    expect(volume?.accessibleTopology.map((t) => t.segments)).toEqual([{ [`${DRIVER}/node`]: NODE_ID }]);
    expect(volume?.contentSource).toBeUndefined();
    const image = await stat(volumeImagePath(h.dataDir, volume?.volumeId ?? ""));
    expect(image.size).toBe(GiB);
    expect(image.blocks * 512).toBeLessThan(MiB);
  });

  it("rounds the size up to whole MiB and honours limit_bytes", async () => {
    const up = await create(uniqueName("round"), { capacityRange: { requiredBytes: BigInt(MiB + 1) } });
    expect(up.volume?.capacityBytes).toBe(BigInt(2 * MiB));
    const tiny = await create(uniqueName("tiny"), { capacityRange: { requiredBytes: 1n } });
    expect(tiny.volume?.capacityBytes).toBe(BigInt(MiB));
    const capped = await create(uniqueName("capped"), { capacityRange: { limitBytes: BigInt(100 * MiB) } });
    expect(capped.volume?.capacityBytes).toBe(BigInt(100 * MiB));
    const exact = await create(uniqueName("exact"), { capacityRange: { requiredBytes: BigInt(3 * MiB), limitBytes: BigInt(3 * MiB) } });
    expect(exact.volume?.capacityBytes).toBe(BigInt(3 * MiB));
  });

  it("returns the same volume for a repeated request, and creates nothing more", async () => {
    const name = uniqueName("retry");
    const args = { capacityRange: { requiredBytes: BigInt(5 * MiB) }, parameters: { "csi.storage.k8s.io/pvc/name": "data" } };
    const first = await create(name, args);
    const again = await create(name, args);
    expect(again.volume).toEqual(first.volume);
    // Without a range the existing size is acceptable too.
    const noRange = await create(name, { parameters: args.parameters });
    expect(noRange.volume?.volumeId).toBe(first.volume?.volumeId);
    const listed = await h.clients.controller.listVolumes({});
    expect(listed.entries.filter((e) => e.volume?.volumeId === first.volume?.volumeId)).toHaveLength(1);
  });

  it("answers ALREADY_EXISTS for the same name with incompatible arguments", async () => {
    const name = uniqueName("conflict");
    const { volume } = await create(name, { capacityRange: { requiredBytes: BigInt(4 * MiB) } });
    await expectCode(
      create(name, { capacityRange: { requiredBytes: BigInt(8 * MiB) } }),
      Code.AlreadyExists,
      /less than capacity_range.required_bytes/,
    );
    await expectCode(
      create(name, { capacityRange: { limitBytes: BigInt(2 * MiB) } }),
      Code.AlreadyExists,
      /more than capacity_range.limit_bytes/,
    );
    await expectCode(create(name, { parameters: { "csi.storage.k8s.io/pvc/name": "other" } }), Code.AlreadyExists, /different parameters/);
    const snapshot = await h.clients.controller.createSnapshot({
      name: uniqueName("conflict-snap"),
      sourceVolumeId: volume?.volumeId ?? "",
    });
    await expectCode(
      create(name, { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot.snapshot?.snapshotId ?? "" } } } }),
      Code.AlreadyExists,
    );
    const requisite = [{ segments: { [`${DRIVER}/node`]: "elsewhere" } }];
    await expectCode(create(name, { accessibilityRequirements: { requisite } }), Code.AlreadyExists, /requisite/);
  });

  it("rejects a volume of the same name created from a different source", async () => {
    const { volume: origin } = await create(uniqueName("origin"));
    const name = uniqueName("clone");
    await create(name, { volumeContentSource: { type: { case: "volume", value: { volumeId: origin?.volumeId ?? "" } } } });
    await expectCode(create(name), Code.AlreadyExists, /created from volume/);
  });

  it("runs one operation at a time per name and per source (ABORTED for the others)", async () => {
    const { volume: source } = await create(uniqueName("race-src"), { capacityRange: { requiredBytes: BigInt(64 * MiB) } });
    const volumeSource = { volumeContentSource: { type: { case: "volume" as const, value: { volumeId: source?.volumeId ?? "" } } } };
    const name = uniqueName("race");
    const results = await Promise.allSettled([
      create(name, volumeSource),
      create(name, volumeSource),
      h.clients.controller.deleteVolume({ volumeId: source?.volumeId ?? "" }),
    ]);
    const codes = results.map((r) => (r.status === "fulfilled" ? "OK" : Code[(r.reason as { code: Code }).code]));
    expect(codes).toEqual(["OK", "Aborted", "Aborted"]);
    const again = await create(name, volumeSource);
    expect(again.volume?.volumeId).toBe(results[0]?.status === "fulfilled" ? (results[0].value.volume?.volumeId ?? "") : "");
  });

  it("answers INVALID_ARGUMENT, saying what to fix, for missing or malformed fields", async () => {
    const c = h.clients.controller;
    await expectCode(c.createVolume({ volumeCapabilities: [mountCapability()] }), Code.InvalidArgument, /name is required/);
    await expectCode(
      c.createVolume({ name: uniqueName("nocaps") }),
      Code.InvalidArgument,
      /volume_capabilities is required: give at least one capability/,
    );
    await expectCode(
      c.createVolume({ name: uniqueName("notype"), volumeCapabilities: [{ accessMode: { mode: Mode.SINGLE_NODE_WRITER } }] }),
      Code.InvalidArgument,
      /access_type is required/,
    );
    await expectCode(
      c.createVolume({ name: uniqueName("nomode"), volumeCapabilities: [{ accessType: { case: "block", value: {} } }] }),
      Code.InvalidArgument,
      /access_mode is required/,
    );
    await expectCode(c.createVolume({ name: "bad\u0001name", volumeCapabilities: [mountCapability()] }), Code.InvalidArgument, /U\+0001/);
    await expectCode(c.createVolume({ name: "x".repeat(129), volumeCapabilities: [mountCapability()] }), Code.InvalidArgument, /129 bytes/);
    await expectCode(
      create(uniqueName("bigmap"), { parameters: { "csi.storage.k8s.io/x": "v".repeat(4097) } }),
      Code.InvalidArgument,
      /4 KiB/,
    );
    await expectCode(create(uniqueName("param"), { parameters: { fancy: "yes" } }), Code.InvalidArgument, /unknown parameters "fancy"/);
    await expectCode(
      create(uniqueName("mutable"), { mutableParameters: { iops: "10" } }),
      Code.InvalidArgument,
      /unknown mutable parameters "iops"/,
    );
    await expectCode(
      create(uniqueName("negative"), { capacityRange: { requiredBytes: -1n } }),
      Code.InvalidArgument,
      /must not be negative/,
    );
    await expectCode(
      create(uniqueName("emptysrc"), { volumeContentSource: { type: { case: undefined } } }),
      Code.InvalidArgument,
      /names neither/,
    );
    await expectCode(
      create(uniqueName("emptytopo"), { accessibilityRequirements: {} }),
      Code.InvalidArgument,
      /neither requisite nor preferred/,
    );
    // A 128-byte name is within the limit, and ordinary whitespace is allowed.
    const long = await create(`${"é".repeat(62)}\tok`);
    expect(long.volume?.volumeId).toMatch(/^vol-/);
  });

  it("accepts only access modes a single-node block device offers, naming the mode it refuses", async () => {
    await expectCode(
      create(uniqueName("mnmw"), { volumeCapabilities: [mountCapability("", Mode.MULTI_NODE_MULTI_WRITER)] }),
      Code.InvalidArgument,
      /MULTI_NODE_MULTI_WRITER is not supported/,
    );
    await expectCode(
      create(uniqueName("mnro"), { volumeCapabilities: [blockCapability(Mode.MULTI_NODE_READER_ONLY)] }),
      Code.InvalidArgument,
      /MULTI_NODE_READER_ONLY/,
    );
    await expectCode(
      create(uniqueName("mixed"), { volumeCapabilities: [mountCapability(), mountCapability("", Mode.MULTI_NODE_SINGLE_WRITER)] }),
      Code.InvalidArgument,
      /volume_capabilities\[1\].*MULTI_NODE_SINGLE_WRITER/,
    );
    await expectCode(
      create(uniqueName("snmw"), { volumeCapabilities: [mountCapability("", Mode.SINGLE_NODE_MULTI_WRITER)] }),
      Code.InvalidArgument,
      /single-node-multi-writer/,
    );
    await expectCode(
      create(uniqueName("btrfs"), { volumeCapabilities: [mountCapability("btrfs")] }),
      Code.InvalidArgument,
      /fs_type "btrfs" is not supported/,
    );
    await expectCode(
      create(uniqueName("twofs"), { volumeCapabilities: [mountCapability("ext4"), mountCapability("xfs")] }),
      Code.InvalidArgument,
      /different filesystems/,
    );
    for (const [fs, mode] of [
      ["xfs", Mode.SINGLE_NODE_WRITER],
      ["ext3", Mode.SINGLE_NODE_READER_ONLY],
      ["", Mode.SINGLE_NODE_READER_ONLY],
    ] as const) {
      const { volume } = await create(uniqueName("ok"), { volumeCapabilities: [mountCapability(fs, mode), blockCapability(mode)] });
      expect(volume?.volumeId).toMatch(/^vol-/);
    }
  });

  it("answers OUT_OF_RANGE for sizes it cannot satisfy", async () => {
    await expectCode(
      create(uniqueName("inverted"), { capacityRange: { requiredBytes: BigInt(10 * MiB), limitBytes: BigInt(5 * MiB) } }),
      Code.OutOfRange,
      /more than limit_bytes/,
    );
    await expectCode(
      create(uniqueName("huge"), { capacityRange: { requiredBytes: BigInt(17 * 1024 * GiB) } }),
      Code.OutOfRange,
      /largest volume/,
    );
    await expectCode(create(uniqueName("small"), { capacityRange: { limitBytes: 4096n } }), Code.OutOfRange, /smallest volume/);
    await expectCode(
      create(uniqueName("unaligned"), { capacityRange: { requiredBytes: BigInt(MiB + 1), limitBytes: BigInt(2 * MiB - 1) } }),
      Code.OutOfRange,
      /multiple of the allocation unit/,
    );
  });

  it("answers RESOURCE_EXHAUSTED beyond the pool's capacity and for a topology it cannot reach", async () => {
    const { availableCapacity } = await h.clients.controller.getCapacity({});
    const tooBig = (availableCapacity / BigInt(MiB) + 1024n) * BigInt(MiB);
    await expectCode(
      create(uniqueName("full"), { capacityRange: { requiredBytes: tooBig } }),
      Code.ResourceExhausted,
      /not enough capacity/,
    );
    const elsewhere = { segments: { [`${DRIVER}/node`]: "another-node" } };
    await expectCode(
      create(uniqueName("far"), { accessibilityRequirements: { requisite: [elsewhere] } }),
      Code.ResourceExhausted,
      /live on node test-node/,
    );
    const here = { segments: { [`${DRIVER}/node`]: NODE_ID } };
    const reachable = await create(uniqueName("near"), {
      accessibilityRequirements: { requisite: [elsewhere, here], preferred: [elsewhere] },
    });
    expect(reachable.volume?.accessibleTopology[0]?.segments).toEqual(here.segments);
    const preferredOnly = await create(uniqueName("pref"), { accessibilityRequirements: { preferred: [elsewhere] } });
    expect(preferredOnly.volume?.volumeId).toMatch(/^vol-/);
    // Nothing was left behind by the refused requests.
    const names = (await h.clients.controller.listVolumes({})).entries.map((e) => e.volume?.volumeId);
    expect(new Set(names).size).toBe(names.length);
  });

  it("answers NOT_FOUND for a missing content source, OUT_OF_RANGE for one larger than the limit", async () => {
    await expectCode(
      create(uniqueName("nosnap"), { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "snap-missing" } } } }),
      Code.NotFound,
      /snapshot snap-missing/,
    );
    await expectCode(
      create(uniqueName("novol"), { volumeContentSource: { type: { case: "volume", value: { volumeId: "vol-missing" } } } }),
      Code.NotFound,
      /volume vol-missing/,
    );
    const { volume } = await create(uniqueName("src"), { capacityRange: { requiredBytes: BigInt(64 * MiB) } });
    const source = { type: { case: "volume" as const, value: { volumeId: volume?.volumeId ?? "" } } };
    await expectCode(
      create(uniqueName("smaller"), { volumeContentSource: source, capacityRange: { limitBytes: BigInt(32 * MiB) } }),
      Code.OutOfRange,
      /smaller than its source/,
    );
    // Without a range a clone takes its source's size; with a bigger one it is bigger.
    const same = await create(uniqueName("same"), { volumeContentSource: source });
    expect(same.volume?.capacityBytes).toBe(BigInt(64 * MiB));
    expect(same.volume?.contentSource?.type).toEqual(expect.objectContaining({ case: "volume" }));
    const bigger = await create(uniqueName("bigger"), { volumeContentSource: source, capacityRange: { requiredBytes: BigInt(96 * MiB) } });
    expect(bigger.volume?.capacityBytes).toBe(BigInt(96 * MiB));
    expect((await stat(volumeImagePath(h.dataDir, bigger.volume?.volumeId ?? ""))).size).toBe(96 * MiB);
  });
});

describe("DeleteVolume", () => {
  it("removes the image, is idempotent, and accepts ids it never issued", async () => {
    const { volume } = await create(uniqueName("delete"));
    const id = volume?.volumeId ?? "";
    await h.clients.controller.deleteVolume({ volumeId: id });
    await expect(stat(volumeImagePath(h.dataDir, id))).rejects.toThrow(/ENOENT/);
    await h.clients.controller.deleteVolume({ volumeId: id });
    await h.clients.controller.deleteVolume({ volumeId: "vol-never-issued" });
    await h.clients.controller.deleteVolume({ volumeId: "../../state" });
    const ids = (await h.clients.controller.listVolumes({})).entries.map((e) => e.volume?.volumeId);
    expect(ids).not.toContain(id);
    // The name is free again.
    const recreated = await create(volume ? uniqueName("delete") : "unused");
    expect(recreated.volume?.volumeId).not.toBe(id);
  });

  it("answers INVALID_ARGUMENT without a volume_id", async () => {
    await expectCode(h.clients.controller.deleteVolume({}), Code.InvalidArgument, /volume_id is required/);
  });

  it("refuses with FAILED_PRECONDITION while the volume is published", async () => {
    const { volume } = await create(uniqueName("published"));
    const volumeId = volume?.volumeId ?? "";
    await h.clients.controller.controllerPublishVolume({ volumeId, nodeId: NODE_ID, volumeCapability: mountCapability() });
    await expectCode(h.clients.controller.deleteVolume({ volumeId }), Code.FailedPrecondition, /published to node test-node/);
    expect((await stat(volumeImagePath(h.dataDir, volumeId))).size).toBe(GiB);
    await h.clients.controller.controllerUnpublishVolume({ volumeId, nodeId: NODE_ID });
    await h.clients.controller.deleteVolume({ volumeId });
  });
});

describe("ControllerExpandVolume", () => {
  it("grows the image; node expansion is required for mount volumes, not for block", async () => {
    const { volume } = await create(uniqueName("grow"), { capacityRange: { requiredBytes: BigInt(10 * MiB) } });
    const volumeId = volume?.volumeId ?? "";
    const grown = await h.clients.controller.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(20 * MiB + 5) },
      volumeCapability: mountCapability(),
    });
    expect(grown.capacityBytes).toBe(BigInt(21 * MiB));
    expect(grown.nodeExpansionRequired).toBe(true);
    expect((await stat(volumeImagePath(h.dataDir, volumeId))).size).toBe(21 * MiB);
    const block = await h.clients.controller.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(30 * MiB) },
      volumeCapability: blockCapability(),
    });
    expect(block).toMatchObject({ capacityBytes: BigInt(30 * MiB), nodeExpansionRequired: false });
    const unspecified = await h.clients.controller.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(31 * MiB) } });
    expect(unspecified.nodeExpansionRequired).toBe(true);
    const listed = (await h.clients.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
    expect(listed?.volume?.capacityBytes).toBe(BigInt(31 * MiB));
  });

  it("is idempotent: a size already reached is OK and changes nothing", async () => {
    const { volume } = await create(uniqueName("same-size"), { capacityRange: { requiredBytes: BigInt(16 * MiB) } });
    const volumeId = volume?.volumeId ?? "";
    for (const requiredBytes of [16 * MiB, 8 * MiB]) {
      const res = await h.clients.controller.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(requiredBytes) } });
      expect(res.capacityBytes).toBe(BigInt(16 * MiB));
    }
    expect((await stat(volumeImagePath(h.dataDir, volumeId))).size).toBe(16 * MiB);
  });

  it("refuses to shrink (OUT_OF_RANGE) and answers the spec's codes for the rest", async () => {
    const { volume } = await create(uniqueName("shrink"), { capacityRange: { requiredBytes: BigInt(16 * MiB) } });
    const volumeId = volume?.volumeId ?? "";
    const c = h.clients.controller;
    await expectCode(
      c.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(8 * MiB), limitBytes: BigInt(8 * MiB) } }),
      Code.OutOfRange,
      /can only grow/,
    );
    await expectCode(
      c.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(17 * 1024 * GiB) } }),
      Code.OutOfRange,
      /largest volume/,
    );
    await expectCode(c.controllerExpandVolume({ volumeId }), Code.InvalidArgument, /capacity_range is required/);
    await expectCode(c.controllerExpandVolume({ capacityRange: { requiredBytes: 1n } }), Code.InvalidArgument, /volume_id is required/);
    await expectCode(
      c.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: -5n } }),
      Code.InvalidArgument,
      /must not be negative/,
    );
    await expectCode(
      c.controllerExpandVolume({
        volumeId,
        capacityRange: { requiredBytes: BigInt(32 * MiB) },
        volumeCapability: mountCapability("", Mode.MULTI_NODE_MULTI_WRITER),
      }),
      Code.InvalidArgument,
      /MULTI_NODE_MULTI_WRITER/,
    );
    await expectCode(
      c.controllerExpandVolume({ volumeId: "vol-missing", capacityRange: { requiredBytes: BigInt(32 * MiB) } }),
      Code.NotFound,
      /vol-missing/,
    );
    const { availableCapacity } = await c.getCapacity({});
    const tooBig = (availableCapacity / BigInt(MiB) + 1024n) * BigInt(MiB);
    await expectCode(
      c.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: tooBig } }),
      Code.ResourceExhausted,
      /not enough capacity/,
    );
    expect((await stat(volumeImagePath(h.dataDir, volumeId))).size).toBe(16 * MiB);
  });
});

describe("ControllerModifyVolume", () => {
  it("answers INVALID_ARGUMENT for a mutable parameter it does not know and changes nothing; NOT_FOUND for an unknown volume", async () => {
    const { volume } = await create(uniqueName("modify"), { capacityRange: { requiredBytes: BigInt(4 * MiB) } });
    const volumeId = volume?.volumeId ?? "";
    await expectCode(
      h.clients.controller.controllerModifyVolume({ volumeId, mutableParameters: { iops: "3000" } }),
      Code.InvalidArgument,
      /"iops"/,
    );
    const after = (await h.clients.controller.listVolumes({})).entries.find((e) => e.volume?.volumeId === volumeId);
    expect(after?.volume).toEqual(volume);
    await expectCode(h.clients.controller.controllerModifyVolume({ volumeId }), Code.InvalidArgument, /mutable_parameters is required/);
    await expectCode(
      h.clients.controller.controllerModifyVolume({ mutableParameters: { a: "b" } }),
      Code.InvalidArgument,
      /volume_id is required/,
    );
    await expectCode(
      h.clients.controller.controllerModifyVolume({ volumeId: "vol-missing", mutableParameters: { provisioning: "thin" } }),
      Code.NotFound,
    );
  });
});
