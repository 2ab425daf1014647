// @module-tag needs-root
import { lstat } from "node:fs/promises";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { connectCsi } from "../../src/csi/client.js";
import { PluginCapability_Service_Type, type GetPluginCapabilitiesResponse } from "../../src/gen/csi/v1/csi_pb.js";
import pkg from "../../package.json" with { type: "json" };
import {
  DRIVER_ENTRY,
  logLines,
  RUNTIMES,
  runDriver,
  startDriver,
  startDriverUntilLogged,
  type DriverProcess,
} from "../support/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

/**
 * Start, stop and the per-process surfaces of the built program, run exactly as
 * users and orchestrators start it: on every runtime it ships for (RUNTIMES)
 * for what depends on the runtime (loading the bundle and its lazily loaded
 * chunks, signals, the debug server), on the test runner's alone for the rest.
 */
function useProcessDir(): { dir: () => string; localArgs: (extra?: string[]) => string[]; track: (d: DriverProcess) => DriverProcess } {
  let dir = "";
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
  return {
    dir: () => dir,
    localArgs: (extra: string[] = []) => ["--backend", "local", "--data-dir", join(dir, "data"), "--node-id", "test-node", ...extra],
    track: (d) => (driver = d),
  };
}

describe.each(RUNTIMES)("do-csi-plugin process on $name", ({ node }) => {
  const { dir, localArgs, track } = useProcessDir();

  it("prints its version and its flags", async () => {
    const version = await runDriver(["--version"], {}, { node });
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe(`do-csi-plugin ${pkg.version}`);
    const help = await runDriver(["--help"], {}, { node });
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
    const res = await runDriver(["--volume-limit", "lots"], {}, { node });
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split("\n")).toHaveLength(1);
    expect(res.stderr).toMatch(/do-csi-plugin: invalid value "lots" for flag --volume-limit/);
  });

  it("serves Identity in all mode: plugin info, capabilities, Probe", async () => {
    const driver = track(await startDriver(join(dir(), "csi.sock"), localArgs(["--driver-name", "local.csi.example.com"]), { node }));
    const clients = connectCsi(driver.endpoint);
    try {
      expect(await clients.identity.getPluginInfo({})).toMatchObject({ name: "local.csi.example.com", vendorVersion: pkg.version });
      expect(pluginServices(await clients.identity.getPluginCapabilities({}))).toContain(PluginCapability_Service_Type.CONTROLLER_SERVICE);
      expect((await clients.identity.probe({})).ready).toBe(true);
      // The controller and node services load lazily (their own chunks of the bundle): both answer.
      expect((await clients.controller.controllerGetCapabilities({})).capabilities.length).toBeGreaterThan(0);
      expect((await clients.node.nodeGetInfo({})).nodeId).toBe("test-node");
    } finally {
      clients.close();
    }
  });

  it.each(["SIGTERM", "SIGINT"] as const)("exits 0 on %s and removes its socket", async (signal) => {
    const socket = join(dir(), "csi.sock");
    const driver = track(await startDriver(socket, localArgs(), { node }));
    const clients = connectCsi(driver.endpoint);
    await clients.identity.probe({});
    clients.close();
    expect(await driver.stop(signal)).toBe(0);
    await expect(lstat(socket)).rejects.toThrow(/ENOENT/);
    expect(driver.stderr(), driver.stderr()).toContain('"msg":"server stopped"');
  });

  it("stops as gracefully on a SIGTERM that arrives while it starts", async () => {
    const socket = join(dir(), "csi.sock");
    const { driver } = await startDriverUntilLogged(
      ["--endpoint", `unix://${socket}`, ...localArgs()],
      (line) => line.msg === "starting", // before the backend opens and the socket is served
      { node },
    );
    track(driver);
    expect(await driver.stop("SIGTERM"), driver.stderr()).toBe(0);
    await expect(lstat(socket)).rejects.toThrow(/ENOENT/);
    expect(logLines(driver.stderr()).map((l) => l.msg)).toContain("server stopped");
  });

  it("exits 1 at once on a second signal", async () => {
    const { driver } = await startDriverUntilLogged(
      ["--endpoint", `unix://${join(dir(), "csi.sock")}`, ...localArgs()],
      (line) => line.msg === "starting",
      {
        node,
      },
    );
    track(driver);
    driver.child.kill("SIGTERM");
    expect(await driver.stop("SIGINT"), driver.stderr()).toBe(1);
    expect(logLines(driver.stderr()).map((l) => l.msg)).toContain("second signal: exiting now");
  });

  it("serves /health and /metrics on --debug-addr with port 0, logging the bound address", async () => {
    const driver = track(await startDriver(join(dir(), "csi.sock"), localArgs(["--debug-addr", "127.0.0.1:0"]), { node }));
    const listening = logLines(driver.stderr()).find((l) => String(l.msg).startsWith("debug server listening"));
    expect(listening?.address, driver.stderr()).toMatch(/^127\.0\.0\.1:\d+$/);
    const base = `http://${String(listening?.address)}`;
    expect(base).not.toMatch(/:0$/);

    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(200);
    expect((await health.text()).trim()).toBe("ok");

    const clients = connectCsi(driver.endpoint);
    try {
      await clients.identity.probe({});
    } finally {
      clients.close();
    }
    const metrics = await fetch(`${base}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    // The histogram's series for the one Probe call (whatever other labels it carries).
    expect(text).toMatch(/^csi_operations_seconds_count\{[^}]*="\/csi\.v1\.Identity\/Probe"[^}]*\} 1$/m);
  });
});

describe("do-csi-plugin process", () => {
  const { dir, localArgs, track } = useProcessDir();

  it.each(["controller", "node"] as const)("serves Identity in %s mode with the same capabilities as in all mode", async (mode) => {
    const driver = track(await startDriver(join(dir(), "csi.sock"), localArgs(["--mode", mode])));
    const clients = connectCsi(driver.endpoint);
    try {
      // The spec: every instance reports the plugin's capabilities, whatever it serves.
      const services = pluginServices(await clients.identity.getPluginCapabilities({}));
      expect(services).toContain(PluginCapability_Service_Type.CONTROLLER_SERVICE);
      expect(services).toContain(PluginCapability_Service_Type.VOLUME_ACCESSIBILITY_CONSTRAINTS);
      expect((await clients.identity.probe({})).ready).toBe(true);
      // Services this mode does not serve answer UNIMPLEMENTED.
      const other =
        mode === "node"
          ? await clients.controller.controllerGetCapabilities({}).catch((e: unknown) => e)
          : await clients.node.nodeGetCapabilities({}).catch((e: unknown) => e);
      expect(other).toBeInstanceOf(ConnectError);
      expect((other as ConnectError).code).toBe(Code.Unimplemented);
      // The local backend's group snapshots: advertised by every instance, served where the controller is.
      expect(services).toContain(PluginCapability_Service_Type.GROUP_CONTROLLER_SERVICE);
      const group = await clients.groupController.groupControllerGetCapabilities({}).catch((e: unknown) => e);
      if (mode === "node") expect((group as ConnectError).code).toBe(Code.Unimplemented);
      else expect(group).not.toBeInstanceOf(ConnectError);
    } finally {
      clients.close();
    }
  });

  it("refuses to start on a socket another live driver serves", async () => {
    const socket = join(dir(), "csi.sock");
    track(await startDriver(socket, localArgs(["--mode", "node"])));
    const second = await runDriver(["--endpoint", `unix://${socket}`, ...localArgs(["--mode", "node"])]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(/another process is already serving on .*csi\.sock/);
    expect((await lstat(socket)).isSocket()).toBe(true); // the first one's socket is untouched
  });

  it("answers Probe with FAILED_PRECONDITION naming the missing tool when mkfs.ext4 is absent", async () => {
    const socket = join(dir(), "csi.sock");
    // In a private mount namespace, hide mkfs.ext4 behind a non-executable file.
    const script = `mount --make-rprivate / && mount --bind /dev/null "$(command -v mkfs.ext4 || echo /usr/sbin/mkfs.ext4)" && exec "${process.execPath}" ${DRIVER_ENTRY} "$@"`;
    const driver = track(
      await startDriver(socket, localArgs(["--mode", "node"]), {
        command: ["unshare", "--mount", "sh", "-c", script, "sh"],
        env: { PATH: `/usr/sbin:/sbin:${process.env.PATH ?? ""}` },
      }),
    );
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

function pluginServices(caps: GetPluginCapabilitiesResponse): PluginCapability_Service_Type[] {
  return caps.capabilities.flatMap((c) => (c.type.case === "service" ? [c.type.value.type] : []));
}
