// @module-tag needs-root
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { MiB, expectCode, useNodeHarness } from "./node-harness.js";

// NodeUnpublishVolume on a target_path that is not a mount and holds data: the data stays, and the answer
// is the caller's problem (FAILED_PRECONDITION), not a plugin failure (INTERNAL).

const h = useNodeHarness("node-unpublish-foreign");

describe("NodeUnpublishVolume on a path holding someone's data", () => {
  it("answers FAILED_PRECONDITION for a non-empty directory and leaves it as it was", async () => {
    const volumeId = "vol-foreign-dir";
    await h.createVolume(volumeId, 16 * MiB);
    const target = await h.path("foreign-dir");
    await mkdir(target, { recursive: true });
    await writeFile(join(target, "data"), "keep me");
    const message = await expectCode(h.node.nodeUnpublishVolume({ volumeId, targetPath: target }), Code.FailedPrecondition);
    expect(message).toContain("left in place");
    expect(await readFile(join(target, "data"), "utf8")).toBe("keep me");
  });

  it("answers FAILED_PRECONDITION for a file with data and leaves it as it was", async () => {
    const volumeId = "vol-foreign-file";
    await h.createVolume(volumeId, 16 * MiB);
    const target = await h.path("foreign-file");
    await writeFile(target, "keep me too");
    await expectCode(h.node.nodeUnpublishVolume({ volumeId, targetPath: target }), Code.FailedPrecondition);
    expect(await readFile(target, "utf8")).toBe("keep me too");
  });
});
