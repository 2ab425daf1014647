// @module-tag needs-root
import { Code } from "@connectrpc/connect";
import { symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DigitalOceanNode, openDigitalOceanNode } from "../../../src/backend/digitalocean/node.js";
import { parseCommandLine } from "../../../src/cli/options.js";
import { silentLogger } from "../../../src/log/logger.js";
import { DoSimulator } from "../../fixtures/do-simulator/simulator.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { deadline, expectCode, FAST_POLLING, GIB, simController } from "./helpers.js";

const DROPLET = 3141;
const PUBLISH_KEY = "dobs.csi.digitalocean.com/volume-name";

describe("DigitalOcean node backend", () => {
  let dir: string;
  let byIdDir: string;
  let sim: DoSimulator;
  beforeEach(async () => {
    dir = await makeTestDir("do-node");
    byIdDir = join(dir, "by-id");
    sim = await DoSimulator.start({ localDropletId: DROPLET, region: "ams3", byIdDir, dataDir: join(dir, "data") });
  });
  afterEach(async () => {
    await sim.stop();
    await removeTestDir(dir);
  });

  function node(options: { validate?: boolean; timeoutMs?: number; volumeLimit?: number } = {}): DigitalOceanNode {
    return new DigitalOceanNode({
      nodeId: String(DROPLET),
      region: "ams3",
      volumeLimit: options.volumeLimit ?? 7,
      driverName: "dobs.csi.digitalocean.com",
      byIdDir,
      deviceWait: { timeoutMs: options.timeoutMs ?? 2_000, validate: options.validate ?? false },
    });
  }

  it("reports the droplet id, the volume limit and the region topology from the metadata service (no API call)", async () => {
    const { config } = parseCommandLine(["--metadata-url", sim.metadataUrl, "--by-id-dir", byIdDir], {}, "test");
    expect(config.mode).toBe("node");
    const backend = await openDigitalOceanNode(config, silentLogger);
    expect(await backend.nodeInfo(deadline())).toEqual({
      nodeId: String(DROPLET),
      maxVolumesPerNode: 7,
      accessibleTopology: { region: "ams3" },
    });
    expect(sim.apiRequests()).toBe(0);
    const { config: custom } = parseCommandLine(["--metadata-url", sim.metadataUrl, "--node-id", "99", "--volume-limit", "3"], {}, "test");
    expect(await (await openDigitalOceanNode(custom, silentLogger)).nodeInfo(deadline())).toEqual({
      nodeId: "99",
      maxVolumesPerNode: 3,
      accessibleTopology: { region: "ams3" },
    });
  });

  it("fails clearly off a droplet", async () => {
    const { config } = parseCommandLine(["--metadata-url", "http://127.0.0.1:9/metadata/v1/"], {}, "test");
    await expect(openDigitalOceanNode(config, silentLogger)).rejects.toThrow(/metadata service.*droplet/);
  });

  it("finds the attached volume's device under scsi-0DO_Volume_<name>, validating the attachment when asked", async () => {
    const controller = simController(sim, { polling: FAST_POLLING });
    const volume = await controller.createVolume(
      {
        name: "pvc-device",
        sizeBytes: GIB,
        accessTypes: ["mount"],
        fsType: "",
        parameters: {},
        mutableParameters: {},
        requisite: [],
        preferred: [],
      },
      deadline(),
    );
    const publishContext = await controller.publishVolume(
      {
        volumeId: volume.id,
        nodeId: String(DROPLET),
        readonly: false,
        accessType: "mount",
        singleNode: true,
        volumeContext: volume.context,
      },
      deadline(),
    );
    const device = await node({ validate: true }).attachDevice(volume.id, publishContext, volume.context, deadline());
    expect(device).toBe(join(byIdDir, "scsi-0DO_Volume_pvc-device"));
    // Idempotent, and a no-op detach.
    expect(await node().attachDevice(volume.id, publishContext, {}, deadline())).toBe(device);
    await node().detachDevice(volume.id, device, deadline());
    await controller.unpublishVolume(volume.id, String(DROPLET), deadline());
    await expectCode(node({ timeoutMs: 200 }).attachDevice(volume.id, publishContext, {}, deadline()), Code.NotFound, /did not appear/);
  });

  it("waits briefly for a link that appears after the attach answered", async () => {
    const volume = sim.seedVolume({ name: "late-link" });
    const host = sim.host;
    if (!host) throw new Error("the simulator has no host attachments");
    setTimeout(() => void host.attach(volume.id, volume.name, 1), 300);
    const started = Date.now();
    const device = await node().attachDevice(volume.id, { [PUBLISH_KEY]: "late-link" }, {}, deadline());
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(device).toBe(join(byIdDir, "scsi-0DO_Volume_late-link"));
    await host.detach(volume.id, volume.name);
  });

  it("refuses a missing volume name, and a link that is not an attached block device when validating", async () => {
    await expectCode(node().attachDevice("vol-1", {}, {}, deadline()), Code.InvalidArgument, /volume-name/);
    await writeFile(join(dir, "plain-file"), "not a device");
    await symlink(join(dir, "plain-file"), join(byIdDir, "scsi-0DO_Volume_not-a-device"));
    await expectCode(
      node({ timeoutMs: 150 }).attachDevice("vol-2", { [PUBLISH_KEY]: "not-a-device" }, {}, deadline()),
      Code.FailedPrecondition,
      /not a block device/,
    );
    await expectCode(node().attachDevice("vol-3", { [PUBLISH_KEY]: "../escape" }, {}, deadline()), Code.InvalidArgument);
    await expectCode(
      node({ timeoutMs: 5_000 }).attachDevice("vol-4", { [PUBLISH_KEY]: "never" }, {}, deadline(200)),
      Code.DeadlineExceeded,
    );
  });

  it("reads the name from a custom driver name's publish_context key", async () => {
    const volume = sim.seedVolume({ name: "custom-name" });
    await sim.host?.attach(volume.id, volume.name, 1);
    const custom = new DigitalOceanNode({ ...node().options, driverName: "example.csi.test" });
    expect(await custom.attachDevice(volume.id, { "example.csi.test/volume-name": "custom-name" }, {}, deadline())).toBe(
      join(byIdDir, "scsi-0DO_Volume_custom-name"),
    );
    await sim.host?.detach(volume.id, volume.name);
  });
});
