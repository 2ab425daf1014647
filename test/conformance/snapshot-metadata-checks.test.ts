import { randomUUID } from "node:crypto";
import { createServer, type Http2Server } from "node:http2";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runConformance } from "../../src/conformance/runner.js";
import {
  BlockMetadataType,
  Controller,
  ControllerServiceCapability_RPC_Type as ControllerCap,
  Identity,
  PluginCapability_Service_Type as PluginService,
  SnapshotMetadata,
} from "../../src/gen/csi/v1/csi_pb.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// The SnapshotMetadata checks of the conformance suite fail a plugin that streams malformed metadata
// and answers OK where the spec names an error (the local backend's run shows that they pass a correct one).

const CAPACITY = 1024n * 1024n;

/** A controller-only plugin whose SnapshotMetadata service gets the spec wrong in every way the checks look at. */
function brokenPlugin() {
  const volumes = new Set<string>();
  const snapshots = new Set<string>();
  /** Overlapping tuples, an empty one, and a capacity that changes mid-stream. */
  async function* badStream() {
    yield {
      blockMetadataType: BlockMetadataType.VARIABLE_LENGTH,
      volumeCapacityBytes: CAPACITY,
      blockMetadata: [
        { byteOffset: 0n, sizeBytes: 8192n },
        { byteOffset: 4096n, sizeBytes: 4096n },
        { byteOffset: 65536n, sizeBytes: 0n },
      ],
    };
    yield { blockMetadataType: BlockMetadataType.VARIABLE_LENGTH, volumeCapacityBytes: 2n * CAPACITY, blockMetadata: [] };
  }
  return {
    identity: {
      getPluginInfo: () => ({ name: "broken.metadata.example.com", vendorVersion: "1" }),
      getPluginCapabilities: () => ({
        capabilities: [PluginService.CONTROLLER_SERVICE, PluginService.SNAPSHOT_METADATA_SERVICE].map((type) => ({
          type: { case: "service" as const, value: { type } },
        })),
      }),
      probe: () => ({ ready: true }),
    },
    controller: {
      controllerGetCapabilities: () => ({
        capabilities: [ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.CREATE_DELETE_SNAPSHOT].map((type) => ({
          type: { case: "rpc" as const, value: { type } },
        })),
      }),
      createVolume: (req: { name: string }) => {
        if (req.name === "") throw new ConnectError("name is required", Code.InvalidArgument);
        const volumeId = `vol-${req.name}`;
        volumes.add(volumeId);
        return { volume: { volumeId, capacityBytes: CAPACITY } };
      },
      deleteVolume: (req: { volumeId: string }) => {
        volumes.delete(req.volumeId);
        return {};
      },
      createSnapshot: (req: { name: string; sourceVolumeId: string }) => {
        if (req.name === "" || req.sourceVolumeId === "") throw new ConnectError("missing fields", Code.InvalidArgument);
        const snapshotId = `snap-${req.name}`;
        snapshots.add(snapshotId);
        return {
          snapshot: {
            snapshotId,
            sourceVolumeId: req.sourceVolumeId,
            sizeBytes: CAPACITY,
            readyToUse: true,
            creationTime: { seconds: 1n },
          },
        };
      },
      deleteSnapshot: (req: { snapshotId: string }) => {
        snapshots.delete(req.snapshotId);
        return {};
      },
    },
    // Never an error: unknown snapshots and any starting_offset get a stream.
    snapshotMetadata: {
      getMetadataAllocated: (req: { snapshotId: string }) => {
        if (req.snapshotId === "") throw new ConnectError("snapshot_id is required", Code.InvalidArgument);
        return badStream();
      },
      getMetadataDelta: (req: { baseSnapshotId: string; targetSnapshotId: string }) => {
        if (req.baseSnapshotId === "" || req.targetSnapshotId === "") throw new ConnectError("ids are required", Code.InvalidArgument);
        return badStream();
      },
    },
  };
}

describe("the conformance suite's SnapshotMetadata checks", () => {
  let dir: string;
  let server: Http2Server;
  let endpoint = "";

  beforeAll(async () => {
    dir = await makeTestDir("conformance-metadata");
    const plugin = brokenPlugin();
    const handler = connectNodeAdapter({
      routes(router) {
        router.service(Identity, plugin.identity);
        router.service(Controller, plugin.controller);
        router.service(SnapshotMetadata, plugin.snapshotMetadata);
      },
    });
    const socket = join(dir, `${randomUUID()}.sock`);
    server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(socket, resolve));
    endpoint = `unix://${socket}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
    if (dir !== undefined) await removeTestDir(dir);
  });

  it("fail a plugin that streams malformed metadata and never answers the spec's errors", async () => {
    const report = await runConformance({ endpoint, testVolumeSize: CAPACITY, filter: /^snapshot-metadata\./ });
    const byId = new Map(report.checks.map((c) => [c.id, c]));
    const allocated = byId.get("snapshot-metadata.allocated-stream");
    expect(allocated?.status).toBe("failed");
    expect(allocated?.message).toMatch(/MUST be ordered and not overlap/);
    expect(allocated?.message).toMatch(/volume_capacity_bytes changed mid-stream/);
    expect(allocated?.message).toMatch(/size_bytes 0 MUST be greater than zero/);
    expect(byId.get("snapshot-metadata.delta-stream")?.status).toBe("failed");
    const errors = byId.get("snapshot-metadata.errors");
    expect(errors?.status).toBe("failed");
    expect(errors?.message).toMatch(/NOT_FOUND/);
    // Writing data needs a Node service: skipped, saying why.
    expect(byId.get("snapshot-metadata.written-blocks")?.status).toBe("skipped");
  }, 60_000);
});
