/**
 * The plugin as the image starts it: from the start-up snapshot that
 * `node dist/build-snapshot.js` builds with the Node that runs it
 * (src/cli/snapshot.ts), on both Nodes the bundle ships on. What the snapshot
 * holds was computed when it was built, so these check that everything that
 * belongs to the process is the process's own: its command line, its
 * environment, its pid, and the processes it spawns. The conformance suite also
 * runs against the image's Node started this way (test/conformance/local.test.ts).
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectCsi } from "../../src/csi/client.js";
import { MiB, mountCapability } from "../driver/controller-harness.js";
import { buildSnapshot, logLines, runDriver, RUNTIMES, snapshotCommand, startDriver } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

it("the snapshot's builder refuses to run as a program", () => {
  const run = spawnSync(process.execPath, ["dist/snapshot-builder.cjs"], { encoding: "utf8" });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain("--build-snapshot-config");
});

for (const runtime of RUNTIMES) {
  describe(`the plugin started from its start-up snapshot on ${runtime.name}`, () => {
    let dir: string;
    let command: readonly string[];
    beforeAll(async () => {
      dir = await makeTestDir("snapshot");
      const blob = join(dir, "plugin.blob");
      buildSnapshot(runtime.node, blob);
      command = snapshotCommand(runtime, blob);
    }, 60_000);
    afterAll(async () => {
      await removeTestDir(dir);
    });

    it("answers --version, --help and a bad flag exactly as the bundle does", async () => {
      for (const args of [["--version"], ["--help"], ["--no-such-flag"], ["--mode", "sideways"]]) {
        const fromSnapshot = await runDriver(args, {}, { command });
        const fromBundle = await runDriver(args, {}, { node: runtime.node });
        expect(fromSnapshot, args.join(" ")).toEqual(fromBundle);
      }
      expect((await runDriver(["--no-such-flag"], {}, { command })).code).toBe(2);
    }, 30_000);

    it("serves a node plugin configured by its own environment, and logs with its own pid", async () => {
      const nodeId = `node-from-env-${process.pid}`;
      const driver = await startDriver(
        join(dir, "node.sock"),
        ["--backend", "local", "--mode", "node", "--data-dir", join(dir, "node-data"), "--log-level", "debug"],
        { command, env: { DO_CSI_NODE_ID: nodeId } },
      );
      const clients = connectCsi(driver.endpoint);
      try {
        expect((await clients.identity.probe({})).ready).toBe(true);
        expect((await clients.identity.getPluginInfo({})).name).toBe("local.csi.do-csi-plugin.io");
        expect((await clients.node.nodeGetInfo({})).nodeId).toBe(nodeId);
      } finally {
        clients.close();
      }
      expect(await driver.stop("SIGTERM")).toBe(0);
      const lines = logLines(driver.stderr());
      expect(lines.some((l) => l.msg === "shutting down")).toBe(true);
      expect(new Set(lines.map((l) => l.pid))).toEqual(new Set([driver.child.pid]));
    }, 30_000);

    it("creates volumes (spawning its tools) and reads its crash points when a call reaches them", async () => {
      const args = [
        "--backend",
        "local",
        "--mode",
        "controller",
        "--data-dir",
        join(dir, "data"),
        "--node-id",
        "n1",
        "--log-level",
        "warn",
      ];
      const volume = (name: string) => ({
        name,
        volumeCapabilities: [mountCapability()],
        capacityRange: { requiredBytes: BigInt(64 * MiB) },
      });
      const healthy = await startDriver(join(dir, "controller.sock"), args, { command });
      const clients = connectCsi(healthy.endpoint);
      try {
        const { volume: created } = await clients.controller.createVolume(volume("from-snapshot"));
        expect(created?.capacityBytes).toBe(BigInt(64 * MiB));
        await clients.controller.deleteVolume({ volumeId: created?.volumeId ?? "" });
      } finally {
        clients.close();
      }
      expect(await healthy.stop("SIGTERM")).toBe(0);

      // Armed in this process's environment only: the snapshot was built without it.
      const armed = await startDriver(join(dir, "controller.sock"), args, {
        command,
        env: { DO_CSI_TEST_CRASH_AT: "volume-create:recorded" },
      });
      const armedClients = connectCsi(armed.endpoint);
      try {
        const outcome = await armedClients.controller.createVolume(volume("crashes")).then(
          () => "answered",
          (err: unknown) => (err instanceof ConnectError ? Code[err.code] : String(err)),
        );
        expect(outcome).not.toBe("answered");
      } finally {
        armedClients.close();
      }
      await armed.exited;
      expect(armed.child.signalCode).toBe("SIGKILL");
    }, 60_000);
  });
}
