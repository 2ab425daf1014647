import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { createServer, type Http2Server } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance } from "../../src/conformance/runner.js";
import {
  Controller,
  ControllerServiceCapability_RPC_Type as ControllerCap,
  GroupController,
  Identity,
  PluginCapability_Service_Type as PluginService,
} from "../../src/gen/csi/v1/csi_pb.js";
import { DRIVER_BINARY } from "../lifecycle/driver-process.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const exec = promisify(execFile);
const CONFORMANCE_BINARY = join(DRIVER_BINARY, "..", "csi-conformance.js");

/**
 * A controller-only plugin with deliberate spec violations: the suite must
 * catch each one (and still pass what the plugin gets right).
 */
function brokenPlugin(volumes: Map<string, bigint>) {
  return {
    identity: {
      getPluginInfo: () => ({ name: "Broken_Plugin", vendorVersion: "" }), // '_' is not allowed; vendor_version is REQUIRED
      getPluginCapabilities: () => ({
        capabilities: [PluginService.CONTROLLER_SERVICE, PluginService.GROUP_CONTROLLER_SERVICE].map((type) => ({
          type: { case: "service" as const, value: { type } },
        })),
      }),
      probe: () => ({}),
    },
    // Advertises no group capability, and cuts groups whose members do not name the group, anew on every call.
    groupController: {
      groupControllerGetCapabilities: () => ({ capabilities: [] }),
      createVolumeGroupSnapshot: (req: { sourceVolumeIds: string[] }) => ({
        groupSnapshot: {
          groupSnapshotId: randomUUID(),
          snapshots: req.sourceVolumeIds.map((sourceVolumeId) => ({ snapshotId: randomUUID(), sourceVolumeId, readyToUse: true })),
          readyToUse: true,
        },
      }),
      deleteVolumeGroupSnapshot: () => ({}),
    },
    controller: {
      controllerGetCapabilities: () => ({
        capabilities: [ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.LIST_VOLUMES, ControllerCap.MODIFY_VOLUME].map((type) => ({
          type: { case: "rpc" as const, value: { type } },
        })),
      }),
      // No validation, no idempotency, ignores the capacity range.
      createVolume: () => {
        const volumeId = randomUUID();
        volumes.set(volumeId, 1n);
        return { volume: { volumeId, capacityBytes: 1n } };
      },
      // NOT_FOUND for an unknown volume instead of OK.
      deleteVolume: (req: { volumeId: string }) => {
        if (req.volumeId === "") throw new ConnectError("volume_id is required", Code.InvalidArgument);
        if (!volumes.delete(req.volumeId)) throw new ConnectError("no such volume", Code.NotFound);
        return {};
      },
      // Confirms whatever it is asked.
      validateVolumeCapabilities: (req: { volumeId: string; volumeCapabilities: unknown[] }) => {
        if (req.volumeId === "" || req.volumeCapabilities.length === 0) throw new ConnectError("missing fields", Code.InvalidArgument);
        if (!volumes.has(req.volumeId)) throw new ConnectError("no such volume", Code.NotFound);
        return { confirmed: { volumeCapabilities: req.volumeCapabilities as never[] } };
      },
      // "Modifies" anything: unknown keys, unknown volumes.
      controllerModifyVolume: (req: { volumeId: string; mutableParameters: Record<string, string> }) => {
        if (req.volumeId === "" || Object.keys(req.mutableParameters).length === 0)
          throw new ConnectError("missing fields", Code.InvalidArgument);
        return {};
      },
      // Ignores max_entries and accepts any token.
      listVolumes: () => ({
        entries: [...volumes.entries()].map(([volumeId, capacityBytes]) => ({ volume: { volumeId, capacityBytes } })),
      }),
    },
  };
}

describe("the conformance suite catches a broken plugin", () => {
  let dir: string;
  let server: Http2Server;
  const served = { endpoint: "" };
  const volumes = new Map<string, bigint>();

  beforeAll(async () => {
    dir = await makeTestDir("conformance-broken");
    const plugin = brokenPlugin(volumes);
    // A plain gRPC server of its own: the plugin under test is not this project's driver.
    const handler = connectNodeAdapter({
      routes(router) {
        router.service(Identity, plugin.identity);
        router.service(Controller, plugin.controller);
        router.service(GroupController, plugin.groupController);
      },
    });
    const socket = join(dir, "broken.sock");
    server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    served.endpoint = `unix://${socket}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    if (dir !== undefined) await removeTestDir(dir);
  });

  it("fails the violated checks, passes the rest, and deletes what it created", async () => {
    const report = await runConformance({ endpoint: served.endpoint, testVolumeSize: 1024n * 1024n, mutableParameters: { tier: "fast" } });
    const status = new Map(report.checks.map((c) => [c.id, c.status]));
    for (const id of [
      "identity.plugin-info",
      "create-volume.missing-name",
      "create-volume.required-bytes",
      "create-volume.idempotent",
      "create-volume.same-name-other-capacity",
      "create-volume.retry-after-deadline",
      "delete-volume.unknown-id",
      "delete-volume.idempotent",
      "list-volumes.bad-token",
      "list-volumes.paging",
      "validate-volume-capabilities.unsupported",
      "controller-modify-volume.not-found",
      "controller-modify-volume.unsupported-key",
      "group-snapshot.capabilities",
      "group-snapshot.create",
    ]) {
      expect(status.get(id), id).toBe("failed");
    }
    for (const id of [
      "identity.probe",
      "delete-volume.missing-id",
      "validate-volume-capabilities.not-found",
      "capabilities.unadvertised.controller.list-snapshots",
      "capabilities.advertised.controller.list-volumes",
      "controller-modify-volume.missing-id",
    ]) {
      expect(status.get(id), id).toBe("passed");
    }
    // Without a Node service every node check is skipped, with the reason.
    const stage = report.checks.find((c) => c.id === "node-stage.missing-volume-id");
    expect(stage?.status).toBe("skipped");
    expect(stage?.message).toMatch(/Node service/);
    expect(report.summary.failed).toBeGreaterThanOrEqual(10);
    // Every volume the suite learned of was deleted by its cleanup, failures or not; the ones made by
    // CreateVolume attempts cut by their deadline, whose ids no answer carried, are named in the failure.
    const leakReport = report.checks.find((c) => c.id === "create-volume.retry-after-deadline")?.message ?? "";
    for (const id of volumes.keys()) expect(leakReport).toContain(id);
  }, 120_000);

  it("the command line exits 1 with the closing line and writes the JSON report", async () => {
    const json = join(dir, "report.json");
    const result = await exec(process.execPath, [
      CONFORMANCE_BINARY,
      "--endpoint",
      served.endpoint,
      "--filter",
      "^identity\\.",
      "--json",
      json,
    ]).then(
      (r) => ({ code: 0, stdout: r.stdout }),
      (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
    );
    expect(result.code).toBe(1);
    const lines = result.stdout.trim().split("\n");
    expect(lines[lines.length - 1]).toMatch(/^\d+ passed, [1-9]\d* failed/);
    expect(result.stdout).toMatch(/FAIL {2}GetPluginInfo returns a valid name and a vendor_version/);
    const report = JSON.parse(await readFile(json, "utf8")) as { summary: { failed: number }; checks: { id: string }[] };
    expect(report.summary.failed).toBeGreaterThan(0);
    expect(report.checks.every((c) => c.id.startsWith("identity."))).toBe(true);
  }, 60_000);

  it("the command line exits 2 with one line when it cannot reach the endpoint", async () => {
    const result = await exec(process.execPath, [CONFORMANCE_BINARY, "--endpoint", `unix://${join(dir, "absent.sock")}`]).then(
      (r) => ({ code: 0, stdout: r.stdout, stderr: "" }),
      (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
    );
    expect(result.code).toBe(2);
    expect(result.stdout + result.stderr).toMatch(/FATAL|GetPluginInfo failed/);
  }, 60_000);
});
