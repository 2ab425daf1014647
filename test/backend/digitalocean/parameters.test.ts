import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IgnoredParameterWarnings, ignoredParametersMessage } from "../../../src/backend/digitalocean/ignored-parameters.js";
import { tagsParameter, validateDigitalOceanParameters } from "../../../src/backend/digitalocean/parameters.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { captureLog, type CapturedLog } from "../../support/log-capture.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { mountCapability, startDriver, type RunningDriver } from "./driver-harness.js";
import { expectCode } from "./helpers.js";

const PVC = "csi.storage.k8s.io/pvc/name";
const NAMESPACE = "csi.storage.k8s.io/pvc/namespace";
const PV = "csi.storage.k8s.io/pv/name";

function warnings(log: CapturedLog): Record<string, unknown>[] {
  return log.records().filter((r) => Array.isArray(r.ignoredParameters));
}

describe("DigitalOcean StorageClass parameters", () => {
  it("accepts and returns unknown keys, sorted; keeps the Go driver's keys; refuses LUKS encryption and mutable parameters", () => {
    expect(
      validateDigitalOceanParameters(
        { zone: "a", fsType: "xfs", iops: "3000", [PVC]: "data", "dobs.csi.digitalocean.com/luks-encrypted": "false" },
        {},
      ),
    ).toEqual(["iops", "zone"]);
    expect(validateDigitalOceanParameters({ fstype: "ext4", "dobs.csi.digitalocean.com/luks-cipher": "aes" }, {})).toEqual([]);
    expect(() => validateDigitalOceanParameters({ iops: "1", "dobs.csi.digitalocean.com/luks-encrypted": "true" }, {})).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(/LUKS encryption is not supported/) }),
    );
    expect(() => validateDigitalOceanParameters({}, { iops: "1" })).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(/can change only tags/) }),
    );
  });

  it("the mutable parameter tags: comma-separated DigitalOcean tag names, spaces and duplicates dropped; bad names refused", () => {
    expect(tagsParameter({ tags: " team:storage , cost-center_7,team:storage" })).toEqual(["team:storage", "cost-center_7"]);
    expect(tagsParameter({ tags: "" })).toEqual([]);
    expect(tagsParameter({})).toBeUndefined();
    expect(() => validateDigitalOceanParameters({}, { tags: "ok,not ok!" })).toThrow(
      expect.objectContaining({ code: Code.InvalidArgument, rawMessage: expect.stringMatching(/"not ok!".*not DigitalOcean tag names/) }),
    );
    expect(() => tagsParameter({ tags: Array.from({ length: 33 }, (_, i) => `t${i}`).join(",") })).toThrow(/at most 32/);
    expect(validateDigitalOceanParameters({}, { tags: "a,b" })).toEqual([]);
  });

  it("says what the driver does with ignored keys, in a message fit for an event, naming a bounded number of bounded keys", () => {
    expect(ignoredParametersMessage(["iops"])).toBe(
      'StorageClass parameter "iops" is not used by this driver and was ignored; volumes are provisioned without them',
    );
    const many = Array.from({ length: 20 }, (_, i) => `key-${String(i).padStart(2, "0")}-${"x".repeat(500)}`);
    const message = ignoredParametersMessage(many);
    expect(message).toMatch(/^StorageClass parameters "key-00-x+\.\.\.", .* and 12 more are not used by this driver and were ignored/);
    expect(message.length).toBeLessThan(1000);
  });

  it("warns once per distinct set of ignored keys, with the PVC and PV that first showed it, and remembers a bounded number of sets", () => {
    const log = captureLog("info");
    const warn = new IgnoredParameterWarnings(log.logger);
    warn.note([], { [PVC]: "quiet" });
    warn.note(["iops"], { iops: "1", [PVC]: "first", [NAMESPACE]: "team-a", [PV]: "pvc-1" });
    warn.note(["iops"], { iops: "2", [PVC]: "second", [NAMESPACE]: "team-a", [PV]: "pvc-2" });
    warn.note(["iops", "zone"], { iops: "1", zone: "b" });
    expect(warnings(log).map((r) => [r.ignoredParameters, r.pvc, r.namespace, r.pv])).toEqual([
      [["iops"], "first", "team-a", "pvc-1"],
      [["iops", "zone"], undefined, undefined, undefined],
    ]);
    expect(warnings(log)[0]?.level).toBe(40);
    expect(warnings(log)[0]?.msg).toBe(ignoredParametersMessage(["iops"]));

    // 64 sets are remembered, the least recently seen forgotten first: "iops" is kept by being seen again.
    for (let i = 0; i < 100; i++) {
      warn.note([`k${i}`], {});
      warn.note(["iops"], {});
    }
    const before = warnings(log).length;
    expect(before).toBe(2 + 100);
    warn.note(["iops"], {});
    warn.note(["k99"], {});
    expect(warnings(log).length).toBe(before);
    warn.note(["k0"], {});
    warn.note(["iops", "zone"], {});
    expect(
      warnings(log)
        .slice(before)
        .map((r) => r.ignoredParameters),
    ).toEqual([["k0"], ["iops", "zone"]]);
  });
});

describe("DigitalOcean controller over gRPC: a StorageClass with keys the driver does not know", () => {
  let dir: string;
  let sim: DoSimulator;
  let log: CapturedLog;
  let driver: RunningDriver;
  beforeAll(async () => {
    dir = await makeTestDir("do-parameters");
    sim = await DoSimulator.start({ region: "lon1" });
    log = captureLog("info");
    driver = await startDriver(
      dir,
      ["--token", "secret-token", "--region", "lon1", "--url", sim.url, "--metadata-url", "http://127.0.0.1:9/metadata/v1/"],
      log.logger,
    );
  });
  afterAll(async () => {
    await driver?.stop();
    await sim?.stop();
    await removeTestDir(dir);
  });

  const create = (name: string, parameters: Record<string, string>) =>
    driver.clients.controller.createVolume({ name, volumeCapabilities: [mountCapability()], parameters });

  it("provisions volumes of that class, warns once naming the keys, and still refuses a known key with a bad value", async () => {
    const klass = { fstype: "ext4", "old-driver/iops": "3000", replicas: "2" };
    for (const name of ["pvc-extra-1", "pvc-extra-2", "pvc-extra-3"]) {
      const { volume } = await create(name, { ...klass, [PVC]: name, [NAMESPACE]: "apps", [PV]: `pv-${name}` });
      expect(volume?.volumeId).not.toBe("");
    }
    expect(sim.volumes().map((v) => v.name)).toEqual(["pvc-extra-1", "pvc-extra-2", "pvc-extra-3"]);
    expect(warnings(log).map((r) => [r.ignoredParameters, r.pvc, r.msg])).toEqual([
      [
        ["old-driver/iops", "replicas"],
        "pvc-extra-1",
        'StorageClass parameters "old-driver/iops", "replicas" are not used by this driver and were ignored; volumes are provisioned without them',
      ],
    ]);

    await expectCode(
      create("pvc-encrypted", { ...klass, "dobs.csi.digitalocean.com/luks-encrypted": "true" }),
      Code.InvalidArgument,
      /LUKS encryption is not supported/,
    );
    expect(sim.volumes()).toHaveLength(3);
  });
});
