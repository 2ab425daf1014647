import { describe, expect, it } from "vitest";
import { useFakeDrivers, type FakeDriver } from "../fakes/fake-driver.js";
import { FAKE_TOPOLOGY_KEY } from "../fakes/memory-controller-backend.js";
import { blockCapability, Code, expectCode, GiB, MiB, mountCapability } from "../driver/controller-harness.js";

// CreateVolume, DeleteVolume and ControllerExpandVolume rules of the controller service, over the in-memory backend.

const fakeDriver = useFakeDrivers("fast-ctl-volumes");

function create(d: FakeDriver, name: string, extra: Record<string, unknown> = {}) {
  return d.clients.controller.createVolume({ name, volumeCapabilities: [mountCapability()], ...extra });
}

describe("CreateVolume sizes", () => {
  it("uses the backend's default size, rounds up to its unit and stays within limit_bytes", async () => {
    const d = await fakeDriver();
    expect((await create(d, "default")).volume?.capacityBytes).toBe(BigInt(GiB));
    expect((await create(d, "round", { capacityRange: { requiredBytes: BigInt(MiB + 1) } })).volume?.capacityBytes).toBe(BigInt(2 * MiB));
    expect((await create(d, "capped", { capacityRange: { limitBytes: BigInt(100 * MiB) } })).volume?.capacityBytes).toBe(BigInt(100 * MiB));
    expect((await create(d, "tiny", { capacityRange: { requiredBytes: 1n } })).volume?.capacityBytes).toBe(BigInt(MiB));
    // The backend only ever sees final sizes.
    expect(d.controllerBackend.created.map((s) => s.sizeBytes)).toEqual([GiB, 2 * MiB, 100 * MiB, MiB]);
  });

  it("answers OUT_OF_RANGE for a range no volume can satisfy, before looking anything up", async () => {
    const d = await fakeDriver({ controller: { sizeRules: { minBytes: 4 * MiB, maxBytes: GiB, unitBytes: 4 * MiB } } });
    await expectCode(create(d, "huge", { capacityRange: { requiredBytes: BigInt(2 * GiB) } }), Code.OutOfRange, /largest volume/);
    await expectCode(create(d, "small", { capacityRange: { limitBytes: BigInt(MiB) } }), Code.OutOfRange, /smallest volume/);
    await expectCode(
      create(d, "inverted", { capacityRange: { requiredBytes: BigInt(8 * MiB), limitBytes: BigInt(4 * MiB) } }),
      Code.OutOfRange,
    );
    await expectCode(
      create(d, "between-units", { capacityRange: { requiredBytes: BigInt(5 * MiB), limitBytes: BigInt(7 * MiB) } }),
      Code.OutOfRange,
      /allocation unit/,
    );
    await expectCode(create(d, "negative", { capacityRange: { requiredBytes: -1n } }), Code.InvalidArgument, /negative/);
    expect(d.controllerBackend.calls.filter((m) => m !== "validateParameters")).toEqual([]);
  });

  it("passes RESOURCE_EXHAUSTED from the backend when the pool is full", async () => {
    const d = await fakeDriver({ controller: { capacityBytes: 3 * GiB } });
    await create(d, "first", { capacityRange: { requiredBytes: BigInt(2 * GiB) } });
    await expectCode(create(d, "second", { capacityRange: { requiredBytes: BigInt(2 * GiB) } }), Code.ResourceExhausted);
    expect(d.controllerBackend.volumeCount()).toBe(1);
  });
});

describe("CreateVolume idempotency by name", () => {
  it("returns the existing volume for a repeated request without creating another", async () => {
    const d = await fakeDriver();
    const args = { capacityRange: { requiredBytes: BigInt(5 * MiB) }, parameters: { type: "ssd" } };
    const first = await create(d, "retry", args);
    const again = await create(d, "retry", args);
    expect(again.volume).toEqual(first.volume);
    // No range: the existing size is acceptable.
    expect((await create(d, "retry", { parameters: args.parameters })).volume?.volumeId).toBe(first.volume?.volumeId);
    expect(d.controllerBackend.created).toHaveLength(1);
  });

  it("answers ALREADY_EXISTS when the existing volume does not satisfy the repeated request", async () => {
    const d = await fakeDriver();
    const source = await create(d, "source");
    const sourceId = source.volume?.volumeId ?? "";
    await create(d, "taken", { capacityRange: { requiredBytes: BigInt(4 * MiB) }, parameters: { type: "ssd" } });
    const again = (extra: Record<string, unknown>) => create(d, "taken", { parameters: { type: "ssd" }, ...extra });
    await expectCode(
      again({ capacityRange: { requiredBytes: BigInt(8 * MiB) } }),
      Code.AlreadyExists,
      /less than capacity_range.required_bytes/,
    );
    await expectCode(again({ capacityRange: { limitBytes: BigInt(2 * MiB) } }), Code.AlreadyExists, /more than capacity_range.limit_bytes/);
    await expectCode(again({ parameters: { type: "hdd" } }), Code.AlreadyExists, /different parameters/);
    await expectCode(
      again({ volumeContentSource: { type: { case: "volume", value: { volumeId: sourceId } } } }),
      Code.AlreadyExists,
      /created from no content source/,
    );
    await expectCode(
      again({ accessibilityRequirements: { requisite: [{ segments: { [FAKE_TOPOLOGY_KEY]: "zone-z" } }] } }),
      Code.AlreadyExists,
      /requisite/,
    );
    expect(d.controllerBackend.created).toHaveLength(2);
  });

  it("does not judge a repeat by parameters or a source the backend does not report", async () => {
    const d = await fakeDriver({ controller: { reportsCreationDetails: false, features: { reportsContentSource: false } } });
    const first = await create(d, "unknown-details", { parameters: { type: "ssd" } });
    const again = await create(d, "unknown-details", { parameters: { type: "hdd" } });
    expect(again.volume?.volumeId).toBe(first.volume?.volumeId);
    // Still judged by what it does report: the size.
    await expectCode(create(d, "unknown-details", { capacityRange: { requiredBytes: BigInt(2 * GiB) } }), Code.AlreadyExists);
  });
});

describe("CreateVolume content sources", () => {
  it("sizes a volume from a snapshot at least as large as the snapshot, and records the source", async () => {
    const d = await fakeDriver();
    const volume = await create(d, "origin", { capacityRange: { requiredBytes: BigInt(40 * MiB) } });
    const { snapshot } = await d.clients.controller.createSnapshot({ name: "snap", sourceVolumeId: volume.volume?.volumeId ?? "" });
    const source = { type: { case: "snapshot" as const, value: { snapshotId: snapshot?.snapshotId ?? "" } } };
    const restored = await create(d, "restored", { volumeContentSource: source });
    expect(restored.volume?.capacityBytes).toBe(BigInt(40 * MiB));
    expect(restored.volume?.contentSource?.type).toMatchObject(source.type);
    await expectCode(
      create(d, "too-small", { volumeContentSource: source, capacityRange: { limitBytes: BigInt(20 * MiB) } }),
      Code.OutOfRange,
      /smaller than its source/,
    );
  });

  it("answers NOT_FOUND for a missing source and FAILED_PRECONDITION for a snapshot not ready yet", async () => {
    const d = await fakeDriver();
    await expectCode(
      create(d, "from-nothing", { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "snap-9999" } } } }),
      Code.NotFound,
    );
    await expectCode(
      create(d, "clone-nothing", { volumeContentSource: { type: { case: "volume", value: { volumeId: "vol-9999" } } } }),
      Code.NotFound,
    );
    const volume = await create(d, "origin");
    const { snapshot } = await d.clients.controller.createSnapshot({ name: "pending", sourceVolumeId: volume.volume?.volumeId ?? "" });
    d.controllerBackend.markSnapshotPending(snapshot?.snapshotId ?? "");
    await expectCode(
      create(d, "early", { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: snapshot?.snapshotId ?? "" } } } }),
      Code.FailedPrecondition,
      /not ready/,
    );
    expect(d.controllerBackend.created).toHaveLength(1);
  });

  it("answers INVALID_ARGUMENT for sources, readonly publishing and features the backend does not offer", async () => {
    const d = await fakeDriver({ controller: { features: { cloneVolume: false, snapshots: false, publishReadonly: false } } });
    await expectCode(
      create(d, "restore", { volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "s" } } } }),
      Code.InvalidArgument,
      /cannot create volumes from snapshots/,
    );
    await expectCode(
      create(d, "clone", { volumeContentSource: { type: { case: "volume", value: { volumeId: "v" } } } }),
      Code.InvalidArgument,
      /cannot clone/,
    );
    await expectCode(
      d.clients.controller.controllerPublishVolume({
        volumeId: "v",
        nodeId: "node-1",
        volumeCapability: mountCapability(),
        readonly: true,
      }),
      Code.InvalidArgument,
      /PUBLISH_READONLY/,
    );
    expect(d.controllerBackend.calls.filter((m) => m !== "validateParameters")).toEqual([]);
  });
});

describe("CreateVolume request validation", () => {
  it("answers INVALID_ARGUMENT for missing or malformed fields and unknown parameters, without creating anything", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    await expectCode(c.createVolume({ volumeCapabilities: [mountCapability()] }), Code.InvalidArgument, /name/);
    await expectCode(c.createVolume({ name: "no-caps" }), Code.InvalidArgument, /volume_capabilities/);
    await expectCode(create(d, "params", { parameters: { colour: "blue" } }), Code.InvalidArgument, /colour/);
    await expectCode(create(d, "mutable", { mutableParameters: { iops: "1" } }), Code.InvalidArgument, /mutable_parameters/);
    await expectCode(
      c.createVolume({ name: "two-fs", volumeCapabilities: [mountCapability("ext4"), mountCapability("xfs")] }),
      Code.InvalidArgument,
      /different filesystems/,
    );
    await expectCode(create(d, "no-topology", { accessibilityRequirements: {} }), Code.InvalidArgument, /accessibility_requirements/);
    // Keys the Kubernetes sidecars add are always accepted.
    await create(d, "sidecar-keys", { parameters: { "csi.storage.k8s.io/pvc/name": "data" } });
    expect(d.controllerBackend.created.map((s) => s.name)).toEqual(["sidecar-keys"]);
  });

  it("passes every access type and the one filesystem to the backend", async () => {
    const d = await fakeDriver();
    await d.clients.controller.createVolume({ name: "both", volumeCapabilities: [mountCapability("xfs"), blockCapability()] });
    expect(d.controllerBackend.created[0]).toMatchObject({ accessTypes: ["mount", "block"], fsType: "xfs" });
  });
});

describe("DeleteVolume", () => {
  it("deletes, is idempotent for ids it never issued, and refuses while the volume is published", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = (await create(d, "doomed")).volume?.volumeId ?? "";
    await c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability() });
    await expectCode(c.deleteVolume({ volumeId }), Code.FailedPrecondition, /node-1/);
    await c.controllerUnpublishVolume({ volumeId, nodeId: "node-1" });
    await c.deleteVolume({ volumeId });
    await c.deleteVolume({ volumeId });
    await c.deleteVolume({ volumeId: "never-issued" });
    expect(d.controllerBackend.volumeCount()).toBe(0);
    await expectCode(c.deleteVolume({}), Code.InvalidArgument, /volume_id/);
  });
});

describe("ControllerExpandVolume", () => {
  it("grows to the requirement rounded up; node expansion is required for mount volumes, not block", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = (await create(d, "grow", { capacityRange: { requiredBytes: BigInt(8 * MiB) } })).volume?.volumeId ?? "";
    const mount = await c.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(10 * MiB + 1) },
      volumeCapability: mountCapability(),
    });
    expect(mount).toMatchObject({ capacityBytes: BigInt(11 * MiB), nodeExpansionRequired: true });
    const block = await c.controllerExpandVolume({
      volumeId,
      capacityRange: { requiredBytes: BigInt(12 * MiB) },
      volumeCapability: blockCapability(),
    });
    expect(block).toMatchObject({ capacityBytes: BigInt(12 * MiB), nodeExpansionRequired: false });
  });

  it("treats a size already reached as done without asking the backend to grow", async () => {
    const d = await fakeDriver();
    const volumeId = (await create(d, "big", { capacityRange: { requiredBytes: BigInt(16 * MiB) } })).volume?.volumeId ?? "";
    const res = await d.clients.controller.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(4 * MiB) } });
    expect(res.capacityBytes).toBe(BigInt(16 * MiB));
    expect(d.controllerBackend.calls).not.toContain("expandVolume");
  });

  it("refuses to shrink (OUT_OF_RANGE), an unknown volume (NOT_FOUND) and a missing range (INVALID_ARGUMENT)", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const volumeId = (await create(d, "fixed", { capacityRange: { requiredBytes: BigInt(16 * MiB) } })).volume?.volumeId ?? "";
    await expectCode(c.controllerExpandVolume({ volumeId, capacityRange: { limitBytes: BigInt(8 * MiB) } }), Code.OutOfRange, /only grow/);
    await expectCode(c.controllerExpandVolume({ volumeId: "vol-9999", capacityRange: { requiredBytes: BigInt(32 * MiB) } }), Code.NotFound);
    await expectCode(c.controllerExpandVolume({ volumeId }), Code.InvalidArgument, /capacity_range/);
    await expectCode(
      c.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: BigInt(32 * GiB) } }),
      Code.OutOfRange,
      /largest/,
    );
    expect(d.controllerBackend.calls).not.toContain("expandVolume");
  });
});
