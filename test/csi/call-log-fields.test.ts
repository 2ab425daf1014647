import { Code, ConnectError } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { callIds, MAX_LOGGED_ID_LENGTH } from "../../src/csi/call-ids.js";
import type { CallObserver } from "../../src/csi/call-handler.js";
import { NotFound } from "../../src/csi/errors.js";
import {
  Controller,
  CreateVolumeRequestSchema,
  ListVolumesRequestSchema,
  Node,
  NodeStageVolumeRequestSchema,
} from "../../src/gen/csi/v1/csi_pb.js";
import { captureLog, type CapturedLog } from "../support/log-capture.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

describe("ids of a call", () => {
  it("are found by field name in any request: own ids, the name, and the content source's ids", () => {
    const fromSnapshot = create(CreateVolumeRequestSchema, {
      name: "pvc-1",
      volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "snap-9" } } },
      secrets: { token: "hunter2" },
    });
    expect(callIds(CreateVolumeRequestSchema, fromSnapshot)).toEqual({ name: "pvc-1", sourceSnapshotId: "snap-9" });
    const clone = create(CreateVolumeRequestSchema, {
      name: "pvc-2",
      volumeContentSource: { type: { case: "volume", value: { volumeId: "vol-7" } } },
    });
    expect(callIds(CreateVolumeRequestSchema, clone)).toEqual({ name: "pvc-2", sourceVolumeId: "vol-7" });
    const stage = create(NodeStageVolumeRequestSchema, {
      volumeId: "vol-3",
      stagingTargetPath: "/staging",
      secrets: { password: "s3cr3t" },
      volumeContext: { node_id: "not-an-id" },
    });
    expect(callIds(NodeStageVolumeRequestSchema, stage)).toEqual({ volumeId: "vol-3" });
    expect(callIds(ListVolumesRequestSchema, create(ListVolumesRequestSchema, { startingToken: "t" }))).toEqual({});
  });

  it("are cut to a bounded length", () => {
    const long = "v".repeat(5000);
    const { volumeId } = callIds(NodeStageVolumeRequestSchema, create(NodeStageVolumeRequestSchema, { volumeId: long }));
    expect(volumeId).toBe(`${"v".repeat(MAX_LOGGED_ID_LENGTH)}...(5000 chars)`);
  });
});

describe("the call's log line and observer", () => {
  let dir: string;
  let log: CapturedLog;
  let served: ServedRoutes | undefined;
  const events: string[] = [];
  const observer: CallObserver = {
    started: (method) => events.push(`start ${method}`),
    finished: (method, code) => events.push(`end ${method} ${code}`),
  };

  beforeEach(async () => {
    dir = await makeTestDir("call-log-fields");
    log = captureLog("info");
    events.length = 0;
    served = await serveRoutes(
      dir,
      log.logger,
      (r) => {
        r.service(Controller, {
          createVolume: () => ({ volume: { volumeId: "vol-new", capacityBytes: 1n, volumeContext: {} } }),
          controllerPublishVolume: () => ({ publishContext: {} }),
          createSnapshot: (req) => {
            throw NotFound("volume %s does not exist", req.sourceVolumeId);
          },
        });
        r.service(Node, { nodeUnstageVolume: () => ({}) });
      },
      { observer },
    );
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await removeTestDir(dir);
  });

  it("carries the volume, snapshot and node ids and the name, never a secret", async () => {
    const c = served!.clients;
    await c.controller.createVolume({
      name: "pvc-logged",
      volumeContentSource: { type: { case: "snapshot", value: { snapshotId: "snap-src" } } },
      secrets: { key: "hunter2-secret" },
    });
    await c.controller.controllerPublishVolume({ volumeId: "vol-a", nodeId: "node-b", secrets: { key: "hunter2-secret" } });
    await c.node.nodeUnstageVolume({ volumeId: "vol-c", stagingTargetPath: "/staging" });
    const err = await c.controller.createSnapshot({ name: "snap-new", sourceVolumeId: "vol-gone" }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.NotFound);

    const finished = log.records().filter((r) => r.msg === "call finished");
    expect(finished).toMatchObject([
      { method: "/csi.v1.Controller/CreateVolume", name: "pvc-logged", sourceSnapshotId: "snap-src", code: "OK", level: 30 },
      { method: "/csi.v1.Controller/ControllerPublishVolume", volumeId: "vol-a", nodeId: "node-b", code: "OK" },
      { method: "/csi.v1.Node/NodeUnstageVolume", volumeId: "vol-c", code: "OK" },
    ]);
    const failed = log.records().filter((r) => r.msg === "call failed");
    expect(failed).toMatchObject([
      { method: "/csi.v1.Controller/CreateSnapshot", name: "snap-new", sourceVolumeId: "vol-gone", code: "NOT_FOUND" },
    ]);
    for (const line of log.lines) expect(line).not.toContain("hunter2");
  });

  it("tells the observer when each call starts and ends, with its code", async () => {
    const c = served!.clients;
    await c.controller.controllerPublishVolume({ volumeId: "vol-a", nodeId: "node-b" });
    await c.controller.createSnapshot({ name: "s", sourceVolumeId: "v" }).catch(() => undefined);
    expect(events).toEqual([
      "start /csi.v1.Controller/ControllerPublishVolume",
      "end /csi.v1.Controller/ControllerPublishVolume OK",
      "start /csi.v1.Controller/CreateSnapshot",
      "end /csi.v1.Controller/CreateSnapshot NOT_FOUND",
    ]);
  });
});
