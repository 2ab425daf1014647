import { create } from "@bufbuild/protobuf";
import { CsiError } from "../../src/errors.js";
import { describe, expect, it } from "vitest";
import { checkMap, checkMaxEntries, requireName, topologyCovers } from "../../src/driver/controller-validation.js";
import { controllerCapabilities, controllerOffer } from "../../src/driver/controller-capabilities.js";
import { checkCapability, requireCapabilities } from "../../src/driver/volume-capability.js";
import { ControllerServiceCapability_RPC_Type as Rpc, VolumeCapabilitySchema } from "../../src/gen/csi/v1/csi_pb.js";
import type { AlphaFeature } from "../../src/config.js";
import { blockCapability, Mode, mountCapability } from "./controller-harness.js";

function message(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof CsiError) return err.rawMessage;
    throw err;
  }
  return "OK";
}

describe("names", () => {
  it("allow any Unicode within 128 bytes except the spec's banned control characters", () => {
    expect(requireName("pvc-1 ü\t\n\r", "name")).toBe("pvc-1 ü\t\n\r");
    expect(requireName("é".repeat(64), "name")).toHaveLength(64);
    expect(message(() => requireName(`${"é".repeat(64)}x`, "name"))).toMatch(/129 bytes/);
    for (const code of [0x00, 0x08, 0x0b, 0x0c, 0x0e, 0x1f, 0x7f, 0x9f]) {
      expect(message(() => requireName(`a${String.fromCharCode(code)}b`, "name"))).toMatch(/control character U\+00/);
    }
    expect(message(() => requireName("", "name"))).toMatch(/name is required/);
  });
});

describe("maps and max_entries", () => {
  it("limit maps to 4 KiB without echoing their values", () => {
    expect(checkMap({ k: "v".repeat(4095) }, "parameters")).toBeDefined();
    const secret = "s3cr3t".repeat(700);
    const text = message(() => checkMap({ token: secret }, "secrets"));
    expect(text).toMatch(/4 KiB/);
    expect(text).not.toContain("s3cr3t");
  });

  it("accept 0 and positive max_entries only", () => {
    expect(checkMaxEntries(0)).toBe(0);
    expect(checkMaxEntries(7)).toBe(7);
    expect(message(() => checkMaxEntries(-1))).toMatch(/must not be negative/);
  });
});

describe("volume capabilities", () => {
  const policy = { singleNodeMultiWriter: false };
  const cap = (init: Parameters<typeof create<typeof VolumeCapabilitySchema>>[1]) => create(VolumeCapabilitySchema, init);

  it("tell a malformed capability from an unsupported one", () => {
    expect(checkCapability(cap({ accessMode: { mode: Mode.SINGLE_NODE_WRITER } }), policy, "c")).toMatchObject({
      ok: false,
      malformed: true,
    });
    expect(checkCapability(cap({ accessType: { case: "block", value: {} } }), policy, "c")).toMatchObject({ ok: false, malformed: true });
    expect(checkCapability(cap(mountCapability("", Mode.MULTI_NODE_READER_ONLY)), policy, "c")).toMatchObject({
      ok: false,
      malformed: false,
    });
    expect(checkCapability(cap(mountCapability("ntfs")), policy, "c")).toMatchObject({ ok: false, malformed: false });
    const flags = cap({
      accessType: { case: "mount", value: { mountFlags: ["x".repeat(5000)] } },
      accessMode: { mode: Mode.SINGLE_NODE_WRITER },
    });
    expect(checkCapability(flags, policy, "c")).toMatchObject({ ok: false, malformed: true });
  });

  it("accept the single-node-multi-writer modes only with the alpha switch", () => {
    const snsw = cap(blockCapability(Mode.SINGLE_NODE_SINGLE_WRITER));
    expect(checkCapability(snsw, policy, "c").ok).toBe(false);
    expect(checkCapability(snsw, { singleNodeMultiWriter: true }, "c")).toMatchObject({ ok: true, capability: { accessType: "block" } });
    expect(checkCapability(cap(blockCapability(Mode.MULTI_NODE_MULTI_WRITER)), { singleNodeMultiWriter: true }, "c").ok).toBe(false);
  });

  it("sum up a CreateVolume's capabilities: access types and the one filesystem", () => {
    const set = requireCapabilities(
      [cap(mountCapability("xfs")), cap(blockCapability()), cap(mountCapability(""))],
      policy,
      "volume_capabilities",
    );
    expect(set.accessTypes).toEqual(["mount", "block"]);
    expect(set.fsType).toBe("xfs");
    expect(message(() => requireCapabilities([], policy, "volume_capabilities"))).toBe(
      "volume_capabilities is required: give at least one capability (block or mount, and an access mode)",
    );
  });
});

describe("topology matching", () => {
  it("is satisfied when every segment of the volume's topology is in the requested one", () => {
    expect(topologyCovers({ region: "a", zone: "z" }, { region: "a" })).toBe(true);
    expect(topologyCovers({ region: "a" }, { region: "a", zone: "z" })).toBe(false);
    expect(topologyCovers({ region: "b" }, { region: "a" })).toBe(false);
  });
});

describe("controller capabilities", () => {
  const all = {
    cloneVolume: true,
    snapshots: true,
    expandVolume: true,
    getCapacity: true,
    publishReadonly: true,
    listPublishedNodes: true,
    volumeCondition: true,
  };
  const names = (alpha: AlphaFeature[], nodeDeployment = false) =>
    controllerCapabilities(controllerOffer(all, { alpha: new Set(alpha), nodeDeployment })).map((c) => Rpc[c.type?.value?.type ?? 0]);

  it("add each alpha capability only with its own switch", () => {
    expect(names([])).not.toEqual(expect.arrayContaining(["VOLUME_CONDITION"]));
    expect(names(["volume-condition"])).toContain("VOLUME_CONDITION");
    expect(names(["volume-condition"])).not.toContain("GET_VOLUME");
    expect(names(["get-volume"])).toContain("GET_VOLUME");
    expect(names(["get-snapshot"])).toContain("GET_SNAPSHOT");
    expect(names(["single-node-multi-writer"])).toContain("SINGLE_NODE_MULTI_WRITER");
    expect(names([])).toHaveLength(10);
  });

  it("send minimum_volume_size once any alpha feature is on", () => {
    expect(controllerOffer(all, { alpha: new Set(), nodeDeployment: false }).minimumVolumeSize).toBe(false);
    expect(controllerOffer(all, { alpha: new Set<AlphaFeature>(["get-volume"]), nodeDeployment: false }).minimumVolumeSize).toBe(true);
  });

  it("drop controller publish (and what describes it) and controller expansion with --node-deployment, and nothing else", () => {
    const published = ["PUBLISH_UNPUBLISH_VOLUME", "PUBLISH_READONLY", "LIST_VOLUMES_PUBLISHED_NODES", "EXPAND_VOLUME"];
    expect(names([])).toEqual(expect.arrayContaining(published));
    const perNode = names(["volume-condition"], true);
    for (const name of published) expect(perNode).not.toContain(name);
    expect(perNode.sort()).toEqual(
      [
        "CREATE_DELETE_VOLUME",
        "LIST_VOLUMES",
        "GET_CAPACITY",
        "CREATE_DELETE_SNAPSHOT",
        "LIST_SNAPSHOTS",
        "CLONE_VOLUME",
        "VOLUME_CONDITION",
      ].sort(),
    );
  });
});
