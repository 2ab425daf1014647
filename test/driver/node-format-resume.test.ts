// @module-tag needs-root
import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { MiB, expectCode, mountCapability, mountEntryAt, useNodeHarness } from "./node-harness.js";

const h = useNodeHarness("node-format-resume");

async function scribble(file: string): Promise<void> {
  // What a killed mkfs may leave: metadata written here and there, no complete superblock.
  const handle = await open(file, "r+");
  try {
    for (const offset of [0, 4096, 8 * MiB, 20 * MiB]) await handle.write(randomBytes(4096), 0, 4096, offset);
  } finally {
    await handle.close();
  }
}

const MARKER = ".do-csi-plugin-formatting";

describe("a format interrupted half-way", () => {
  it("is redone on the next NodeStageVolume when this plugin started it", async () => {
    const id = "resume-own";
    const image = await h.createVolume(id, 64 * MiB);
    await scribble(image);
    const staging = await h.path(id, "staging");
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, MARKER), `${id}\n`);
    await h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("ext4") });
    expect((await mountEntryAt(staging))?.fsType).toBe("ext4");
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
    expect(await readdir(staging)).not.toContain(MARKER);
  });

  it("does not license formatting another volume's device", async () => {
    const id = "resume-other";
    const image = await h.createVolume(id, 64 * MiB);
    await scribble(image);
    const staging = await h.path(id, "staging");
    await mkdir(staging, { recursive: true });
    await writeFile(join(staging, MARKER), "some-other-volume\n");
    const text = await expectCode(
      h.node.nodeStageVolume({ volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("ext4") }),
      Code.FailedPrecondition,
    );
    expect(text).toMatch(/refusing to format/);
  });

  it("converges when the caller's deadline expires during mkfs and the call is retried", async () => {
    const id = "deadline-mkfs";
    await h.createVolume(id, 200 * 1024 * MiB); // sparse; mkfs takes long enough to miss a 1 ms deadline
    const staging = await h.path(id, "staging");
    const request = { volumeId: id, stagingTargetPath: staging, volumeCapability: mountCapability("xfs") };
    const first = await h.node.nodeStageVolume(request, { timeoutMs: 1 }).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(ConnectError);
    expect((first as ConnectError).code).toBe(Code.DeadlineExceeded);
    // Retry as the kubelet does, with back-off, until the stage succeeds.
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        await h.node.nodeStageVolume(request);
        break;
      } catch (err) {
        if (!(err instanceof ConnectError) || err.code !== Code.Aborted || Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    expect((await mountEntryAt(staging))?.fsType).toBe("xfs");
    await h.node.nodeUnstageVolume({ volumeId: id, stagingTargetPath: staging });
  });
});
