// @module-tag needs-root
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { makeFilesystem } from "../../src/mounter/format.js";
import { probeDevice } from "../../src/mounter/probe.js";
import { captureLog } from "../support/log-capture.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";
import { MiB, cleanHost, newLoop } from "./loop-fixture.js";

let dir: string;
beforeAll(async () => {
  dir = await makeTestDir("mounter-format-progress");
});
afterEach(async () => {
  await cleanHost(dir);
});
afterAll(async () => {
  await cleanHost(dir);
  await removeTestDir(dir);
});

describe("makeFilesystem progress", () => {
  it("logs that mkfs is still running, with the device and the caller's fields, and stops when it ends", async () => {
    const log = captureLog("info");
    const { device } = await newLoop(dir, "progress.img", 256 * MiB);
    await makeFilesystem(device, "ext4", { progress: { log: log.logger, intervalMs: 1, fields: { volumeId: "vol-progress" } } });
    const lines = log.records().filter((r) => r.msg === "still waiting");
    expect(lines.length).toBeGreaterThanOrEqual(1);
    expect(lines[0]).toMatchObject({ waitingFor: `mkfs.ext4 on ${device}`, volumeId: "vol-progress" });
    expect(await probeDevice(device, AbortSignal.timeout(10_000))).toMatchObject({ kind: "filesystem", fsType: "ext4" });
    const count = log.lines.length;
    await new Promise((r) => setTimeout(r, 20));
    expect(log.lines.length).toBe(count);
  });
});
