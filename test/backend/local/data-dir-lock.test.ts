import { spawn } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DataDirInUseError, DataDirLock } from "../../../src/backend/local/data-dir-lock.js";
import { lockFilePath } from "../../../src/backend/local/layout.js";
import { openLocalController } from "../../../src/backend/local/controller.js";
import { silentLogger } from "../../../src/log/logger.js";
import { startDriver, type DriverProcess } from "../../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../../support/test-dir.js";
import { controllerConfig } from "../../driver/controller-harness.js";
import { copyBuiltCli } from "./local-fixtures.js";

// Two processes must never share a data dir: the second refuses to start, clearly; a lock left by a
// process that died (even by kill -9) never blocks the next one.

let dir: string;
let command: string[] = [];
const running: DriverProcess[] = [];

beforeAll(async () => {
  dir = await makeTestDir("local-lock");
  command = await copyBuiltCli(dir);
});
afterAll(async () => {
  for (const p of running) await p.stop("SIGKILL");
  await removeTestDir(dir);
});

describe("DataDirLock", () => {
  it("is exclusive, names the holder, and is free again once released", async () => {
    const dataDir = join(dir, "inproc");
    await mkdir(dataDir, { recursive: true });
    const first = await DataDirLock.acquire(dataDir);
    expect((await readFile(lockFilePath(dataDir), "utf8")).trim()).toBe(String(process.pid));
    const second = DataDirLock.acquire(dataDir);
    await expect(second).rejects.toBeInstanceOf(DataDirInUseError);
    await expect(second).rejects.toThrow(`data dir ${dataDir} is in use by another do-csi-plugin controller (pid ${process.pid})`);
    await first.release();
    const third = await DataDirLock.acquire(dataDir);
    await third.release();
  });

  it("keeps a second controller of the same process off the data dir", async () => {
    const config = controllerConfig(join(dir, "ctl"));
    const backend = await openLocalController(config, silentLogger);
    try {
      await expect(openLocalController(config, silentLogger)).rejects.toThrow(/is in use by another do-csi-plugin controller/);
    } finally {
      await backend.close();
    }
    const again = await openLocalController(config, silentLogger);
    await again.close();
  });
});

describe("two driver processes on one data dir", () => {
  const args = (dataDir: string) => ["--backend", "local", "--mode", "controller", "--data-dir", dataDir, "--node-id", "lock-node"];

  it("the second refuses to start with a clear message; after kill -9 of the first, a new one starts", async () => {
    const dataDir = join(dir, "procs");
    const first = await startDriver(join(dir, "first.sock"), args(dataDir), { command });
    running.push(first);
    const pid = first.child.pid;

    const [node = "node", ...rest] = command;
    const second = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(node, [...rest, "--endpoint", `unix://${join(dir, "second.sock")}`, ...args(dataDir)], {
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
      child.once("exit", (code) => resolve({ code, stderr }));
    });
    expect(second.code).not.toBe(0);
    expect(second.stderr).toContain(`data dir ${dataDir} is in use by another do-csi-plugin controller (pid ${pid})`);
    expect(second.stderr).toMatch(/give this one another --data-dir/);

    await first.stop("SIGKILL");
    const third = await startDriver(join(dir, "third.sock"), args(dataDir), { command });
    running.push(third);
    expect((await readFile(lockFilePath(dataDir), "utf8")).trim()).toBe(String(third.child.pid));
    await third.stop("SIGTERM");
  });
});
