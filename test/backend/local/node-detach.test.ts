// @module-tag needs-root
import { open } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { volumeImagePath } from "../../../src/backend/local/layout.js";
import { loopDevicesFor } from "../../../src/mounter/loop.js";
import { MiB, mountCapability, useNodeHarness } from "../../driver/node-harness.js";

// `losetup --detach` of a loop device another process holds open only marks it for detaching on the last
// close. NodeUnstageVolume must not report the volume unstaged while its loop device is still there:
// DeleteVolume refuses a volume with a loop device (the soak and the crash campaign met this at random).

const h = useNodeHarness("local-node-detach");

describe("NodeUnstageVolume while another process holds the loop device open", () => {
  it("answers once the device is really detached", async () => {
    const volumeId = "vol-held-open";
    await h.createVolume(volumeId, 16 * MiB);
    const stagingTargetPath = await h.path("held-open-staging");
    await h.node.nodeStageVolume({ volumeId, stagingTargetPath, volumeCapability: mountCapability() });
    const image = volumeImagePath(h.dataDir, volumeId);
    const [device] = await loopDevicesFor(image);
    expect(device).toBeDefined();

    const holder = await open(device ?? "", "r");
    let closed = false;
    try {
      const unstaged = h.node.nodeUnstageVolume({ volumeId, stagingTargetPath }).then(async () => ({
        closedFirst: closed,
        devices: await loopDevicesFor(image),
      }));
      await new Promise((r) => setTimeout(r, 500));
      closed = true;
      await holder.close();
      const outcome = await unstaged;
      expect(outcome.closedFirst).toBe(true);
      expect(outcome.devices).toEqual([]);
    } finally {
      if (!closed) await holder.close();
    }
  });
});
