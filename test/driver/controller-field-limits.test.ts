import { create, type DescMessage, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Controller, Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { callMethod } from "../support/call-method.js";
import { stringSlots, withSlot, type StringSlot } from "../support/string-slots.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, mountCapability, NODE_ID, startController, type ControllerHarness } from "./controller-harness.js";

// The spec's size limits, field by field: every string slot of every Controller request (found from the
// descriptors, so a field added to the proto is checked at once) just over its limit is INVALID_ARGUMENT
// naming the field and its size, before the driver looks anything up, and the value is never echoed.

let dir: string;
let h: ControllerHarness;

beforeAll(async () => {
  dir = await makeTestDir("ctl-field-limits");
  h = await startController(dir, ["--alpha-features", "all"]);
});
afterAll(async () => {
  await h?.stop();
  await removeTestDir(dir);
});

const mountWithFlags = {
  ...mountCapability("ext4"),
  accessType: { case: "mount" as const, value: { fsType: "ext4", mountFlags: ["noatime"] } },
};

/** A valid request of each Controller method: it fails, if at all, only because the objects it names do not exist. */
const BASES: { [name: string]: MessageInitShape<DescMessage> } = {
  CreateVolume: { name: "limits-base", volumeCapabilities: [mountWithFlags], capacityRange: { requiredBytes: BigInt(MiB) } },
  DeleteVolume: { volumeId: "no-such-volume" },
  ControllerPublishVolume: { volumeId: "no-such-volume", nodeId: NODE_ID, volumeCapability: mountWithFlags },
  ControllerUnpublishVolume: { volumeId: "no-such-volume", nodeId: NODE_ID },
  ValidateVolumeCapabilities: { volumeId: "no-such-volume", volumeCapabilities: [mountWithFlags] },
  ListVolumes: {},
  GetCapacity: { volumeCapabilities: [mountWithFlags] },
  CreateSnapshot: { sourceVolumeId: "no-such-volume", name: "limits-snapshot" },
  DeleteSnapshot: { snapshotId: "no-such-snapshot" },
  ListSnapshots: {},
  GetSnapshot: { snapshotId: "no-such-snapshot" },
  ControllerExpandVolume: {
    volumeId: "no-such-volume",
    capacityRange: { requiredBytes: BigInt(2 * MiB) },
    volumeCapability: mountWithFlags,
  },
  ControllerGetVolume: { volumeId: "no-such-volume" },
  ControllerModifyVolume: { volumeId: "no-such-volume", mutableParameters: { provisioning: "thin" } },
};

/** The spec's limit of a slot's field: maps and mount_flags 4 KiB in all, node_id 256 bytes, any other string 128. */
function limitOf(slot: StringSlot): number {
  const field = slot.fields[slot.fields.length - 1];
  if (slot.part !== "field" || field?.name === "mount_flags") return 4096;
  if (field?.name === "node_id") return 256;
  return 128;
}

const cases = Controller.methods.flatMap((method) =>
  stringSlots(method.input).map((slot) => ({ method, slot, name: `${method.name} ${slot.path}` })),
);

describe("Controller size limits", () => {
  it("have a valid base request for every method with string fields, which passes validation", async () => {
    const withStrings = Controller.methods.filter((m) => stringSlots(m.input).length > 0).map((m) => m.name);
    expect(Object.keys(BASES).sort()).toEqual(withStrings.sort());
    for (const method of Controller.methods) {
      const base = BASES[method.name];
      if (base === undefined) continue;
      const { error } = await callMethod(h.clients.transport, method, create(method.input, base), 10_000);
      expect(error?.code, `${method.name}: ${error?.rawMessage}`).not.toBe(Code.InvalidArgument);
    }
    // Identity takes no strings at all.
    expect(Identity.methods.flatMap((m) => stringSlots(m.input))).toEqual([]);
  });

  it.each(cases)("$name over its limit is INVALID_ARGUMENT naming the field, without echoing it", async ({ method, slot }) => {
    const base = create(method.input, BASES[method.name] as MessageInitShape<DescMessage>) as MessageShape<DescMessage>;
    const limit = limitOf(slot);
    const value = "Q".repeat(limit + 1);
    const { error } = await callMethod(h.clients.transport, method, withSlot(method.input, base, slot, value), 10_000);
    expect(error, `${slot.path} of ${limit + 1} bytes was accepted`).toBeDefined();
    const fieldName = slot.fields[slot.fields.length - 1]?.name ?? "";
    expect(Code[error?.code ?? Code.Unknown], error?.rawMessage).toBe(Code[Code.InvalidArgument]);
    expect(error?.rawMessage).toContain(fieldName);
    const size = /(\d+) bytes/.exec(error?.rawMessage ?? "");
    expect(Number(size?.[1]), error?.rawMessage).toBeGreaterThan(limit);
    expect(error?.rawMessage).not.toContain("QQQQ");
  });

  it("accept node_id up to 256 bytes, the limit NodeGetInfo may use", async () => {
    const [publish] = Controller.methods.filter((m) => m.name === "ControllerPublishVolume");
    if (publish === undefined) throw new Error("ControllerPublishVolume is missing");
    const base = create(publish.input, { ...BASES.ControllerPublishVolume, nodeId: "n".repeat(256) });
    const { error } = await callMethod(h.clients.transport, publish, base, 10_000);
    expect(Code[error?.code ?? Code.Unknown], error?.rawMessage).toBe(Code[Code.NotFound]);
  });

  it("answer ABORTED, not INVALID_ARGUMENT, for a starting_token within the limit that this plugin did not issue", async () => {
    const [list] = Controller.methods.filter((m) => m.name === "ListVolumes");
    if (list === undefined) throw new Error("ListVolumes is missing");
    const { error } = await callMethod(h.clients.transport, list, create(list.input, { startingToken: "t\n".repeat(64) }), 10_000);
    expect(Code[error?.code ?? Code.Unknown]).toBe(Code[Code.Aborted]);
    // Escaped, and cut where the escaped form reaches the bound, with the token's size.
    expect(error?.rawMessage).toContain(`"${"t\\n".repeat(42)}t"… (128 bytes)`);
  });
});
