import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { connectCsi } from "../../src/csi/client.js";
import { PluginCapability_Service_Type } from "../../src/gen/csi/v1/csi_pb.js";
import pkg from "../../package.json" with { type: "json" };
import { DRIVER_ENTRY, runDriver, startDriver, type DriverProcess } from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// These tests run the built program exactly as users and orchestrators start it.
describe("do-csi-plugin process", () => {
  let dir: string;
  let driver: DriverProcess | undefined;

  beforeAll(async () => {
    await lstat(DRIVER_ENTRY); // built by `npm test`'s pretest (npm run build)
  });
  beforeEach(async () => {
    dir = await makeTestDir("process");
  });
  afterEach(async () => {
    await driver?.stop("SIGKILL");
    driver = undefined;
    await removeTestDir(dir);
  });

  const localArgs = (extra: string[] = []) => ["--backend", "local", "--data-dir", join(dir, "data"), "--node-id", "test-node", ...extra];

  it("prints its version and its flags", async () => {
    const version = await runDriver(["--version"]);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(`do-csi-plugin ${pkg.version}`);
    const help = await runDriver(["--help"]);
    expect(help.code).toBe(0);
    for (const flag of [
      "--endpoint",
      "--token",
      "--url",
      "--region",
      "--driver-name",
      "--debug-addr",
      "--do-tag",
      "--volume-limit",
      "--backend",
      "--data-dir",
    ]) {
      expect(help.stdout).toContain(flag);
    }
  });

  it("fails fast on a bad flag with exit code 2 and one line", async () => {
    const res = await runDriver(["--volume-limit", "lots"]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/do-csi-plugin: invalid value "lots" for flag --volume-limit/);
  });

  it.each(["all", "controller", "node"] as const)("serves Identity in %s mode, with the same capabilities in every mode", async (mode) => {
    driver = await startDriver(join(dir, "csi.sock"), localArgs(["--mode", mode, "--driver-name", "local.csi.example.com"]));
    const clients = connectCsi(driver.endpoint);
    try {
      const info = await clients.identity.getPluginInfo({});
      expect(info).toMatchObject({ name: "local.csi.example.com", vendorVersion: pkg.version });
      const caps = await clients.identity.getPluginCapabilities({});
      const services = caps.capabilities.flatMap((c) => (c.type.case === "service" ? [c.type.value.type] : []));
      // The spec: every instance reports the plugin's capabilities, whatever it serves.
      expect(services).toContain(PluginCapability_Service_Type.CONTROLLER_SERVICE);
      expect(services).toContain(PluginCapability_Service_Type.VOLUME_ACCESSIBILITY_CONSTRAINTS);
      expect((await clients.identity.probe({})).ready).toBe(true);
      // Services this mode does not serve answer UNIMPLEMENTED.
      if (mode === "node") {
        const err = (await clients.controller.controllerGetCapabilities({}).catch((e: unknown) => e)) as ConnectError;
        expect(err.code).toBe(Code.Unimplemented);
      }
      if (mode === "controller") {
        const err = (await clients.node.nodeGetCapabilities({}).catch((e: unknown) => e)) as ConnectError;
        expect(err.code).toBe(Code.Unimplemented);
      }
      const group = (await clients.groupController.groupControllerGetCapabilities({}).catch((e: unknown) => e)) as ConnectError;
      expect(group.code).toBe(Code.Unimplemented);
    } finally {
      clients.close();
    }
  });

  it.each(["SIGTERM", "SIGINT"] as const)("exits 0 on %s and removes its socket", async (signal) => {
    const socket = join(dir, "csi.sock");
    driver = await startDriver(socket, localArgs());
    const clients = connectCsi(driver.endpoint);
    await clients.identity.probe({});
    clients.close();
    expect(await driver.stop(signal)).toBe(0);
    await expect(lstat(socket)).rejects.toThrow(/ENOENT/);
    expect(driver.stderr(), driver.stderr()).toContain('"msg":"server stopped"');
  });

  it("refuses to start on a socket another live driver serves", async () => {
    const socket = join(dir, "csi.sock");
    driver = await startDriver(socket, localArgs(["--mode", "node"]));
    const second = await runDriver(["--endpoint", `unix://${socket}`, ...localArgs(["--mode", "node"])]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another process is already serving on .*csi\.sock/);
    expect((await lstat(socket)).isSocket()).toBe(true); // the first one's socket is untouched
  });

  it("answers Probe with FAILED_PRECONDITION naming the missing tool when mkfs.ext4 is absent", async () => {
    const socket = join(dir, "csi.sock");
    // In a private mount namespace, hide mkfs.ext4 behind a non-executable file.
    const script = `mount --make-rprivate / && mount --bind /dev/null "$(command -v mkfs.ext4 || echo /usr/sbin/mkfs.ext4)" && exec node ${DRIVER_ENTRY} "$@"`;
    driver = await startDriver(socket, localArgs(["--mode", "node"]), {
      command: ["unshare", "--mount", "sh", "-c", script, "sh"],
      env: { PATH: `/usr/sbin:/sbin:${process.env.PATH ?? ""}` },
    });
    const clients = connectCsi(driver.endpoint);
    try {
      const err = (await clients.identity.probe({}).catch((e: unknown) => e)) as ConnectError;
      expect(err).toBeInstanceOf(ConnectError);
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toContain("mkfs.ext4");
    } finally {
      clients.close();
    }
  });
});
