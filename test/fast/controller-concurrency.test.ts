import { describe, expect, it } from "vitest";
import { CsiError, Code as CsiCode, Unavailable } from "../../src/csi/errors.js";
import { useFakeDrivers } from "../fakes/fake-driver.js";
import { Code, expectCode, mountCapability } from "../driver/controller-harness.js";

// One operation at a time per volume, snapshot and name (ABORTED for the others), deadlines, and how backend failures reach the caller.

const fakeDriver = useFakeDrivers("fast-ctl-concurrency");

/** Wait (briefly) until `condition` holds: the server notices a cancelled call a moment after the client does. */
async function eventually(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !condition(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(condition()).toBe(true);
}

describe("in-flight operations", () => {
  it("answers ABORTED to a CreateVolume of a name being created, and the same volume once it is done", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const gate = d.controllerBackend.gate("createVolume");
    const first = c.createVolume({ name: "busy", volumeCapabilities: [mountCapability()] });
    await gate.entered();
    await expectCode(
      c.createVolume({ name: "busy", volumeCapabilities: [mountCapability()] }),
      Code.Aborted,
      /CreateVolume is already in progress/,
    );
    // Another name is not held up.
    const other = c.createVolume({ name: "free", volumeCapabilities: [mountCapability()] });
    await gate.entered(2);
    gate.release();
    const created = await first;
    await other;
    const again = await c.createVolume({ name: "busy", volumeCapabilities: [mountCapability()] });
    expect(again.volume?.volumeId).toBe(created.volume?.volumeId);
    expect(d.controllerBackend.created.map((s) => s.name)).toEqual(["busy", "free"]);
  });

  it("holds a volume for publish, unpublish, expand, delete and as a source or snapshot source", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const { volume } = await c.createVolume({ name: "held", volumeCapabilities: [mountCapability()] });
    const volumeId = volume?.volumeId ?? "";
    const gate = d.controllerBackend.gate("publishVolume");
    const publishing = c.controllerPublishVolume({ volumeId, nodeId: "node-1", volumeCapability: mountCapability() });
    await gate.entered();
    await expectCode(c.controllerUnpublishVolume({ volumeId, nodeId: "node-1" }), Code.Aborted);
    await expectCode(c.deleteVolume({ volumeId }), Code.Aborted);
    await expectCode(c.controllerExpandVolume({ volumeId, capacityRange: { requiredBytes: 1n << 31n } }), Code.Aborted);
    await expectCode(c.createSnapshot({ name: "snap", sourceVolumeId: volumeId }), Code.Aborted);
    await expectCode(
      c.createVolume({
        name: "clone",
        volumeCapabilities: [mountCapability()],
        volumeContentSource: { type: { case: "volume", value: { volumeId } } },
      }),
      Code.Aborted,
    );
    gate.release();
    await publishing;
    await c.controllerUnpublishVolume({ volumeId, nodeId: "node-1" });
    await c.deleteVolume({ volumeId });
  });

  it("releases an operation's locks when the caller's deadline expires, and reports DEADLINE_EXCEEDED", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const gate = d.controllerBackend.gate("createVolume");
    await expectCode(c.createVolume({ name: "slow", volumeCapabilities: [mountCapability()] }, { timeoutMs: 300 }), Code.DeadlineExceeded);
    await eventually(() => gate.waiting === 0);
    gate.release();
    const retried = await c.createVolume({ name: "slow", volumeCapabilities: [mountCapability()] });
    expect(retried.volume?.volumeId).not.toBe("");
    expect(d.controllerBackend.volumeCount()).toBe(1);
  });
});

describe("backend failures", () => {
  it("pass status errors through, turn UNKNOWN and plain errors into INTERNAL, and release the locks", async () => {
    const d = await fakeDriver();
    const c = d.clients.controller;
    const b = d.controllerBackend;
    const create = () => c.createVolume({ name: "fragile", volumeCapabilities: [mountCapability()] });
    b.failNext("createVolume", new Error("disk on fire"));
    await expectCode(create(), Code.Internal, /^disk on fire$/);
    b.failNext("findVolumeByName", new CsiError(CsiCode.Unknown, "confused"));
    await expectCode(create(), Code.Internal, /confused/);
    b.failNext("createVolume", Unavailable("the storage API is down; retry later"));
    await expectCode(create(), Code.Unavailable, /storage API is down/);
    b.failNext("validateParameters", new Error("parameter table missing"));
    await expectCode(create(), Code.Internal, /parameter table missing/);
    // None of the failures left the name locked or a volume behind.
    const { volume } = await create();
    expect(volume?.volumeId).not.toBe("");
    expect(b.volumeCount()).toBe(1);
  });
});
