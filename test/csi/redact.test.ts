import { create, createFileRegistry, setExtension, type DescMessage } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FieldOptionsSchema,
  FileDescriptorProtoSchema,
  file_google_protobuf_descriptor,
} from "@bufbuild/protobuf/wkt";
import {
  Controller,
  CreateVolumeRequestSchema,
  NodeStageVolumeRequestSchema,
  NodePublishVolumeRequestSchema,
  csi_secret,
  file_csi_v1_csi,
} from "../../src/gen/csi/v1/csi_pb.js";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { REDACTED, redactedJson, carriesSecrets } from "../../src/csi/redact.js";
import { captureLog } from "../support/log-capture.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

const CANARY = "canary-9f1c2e-secret";

/**
 * A message type that nests secrets at several depths, as a future CSI version
 * might: Outer { Inner inner; repeated Inner list; map<string, Inner> by_name; string plain }
 * and Inner { map<string,string> creds [(csi.v1.csi_secret) = true]; string token [(csi_secret)]; string visible }.
 */
function nestedSecretTypes(): { outer: DescMessage } {
  const secretOption = create(FieldOptionsSchema);
  setExtension(secretOption, csi_secret, true);
  const { OPTIONAL, REPEATED } = FieldDescriptorProto_Label;
  const { STRING, MESSAGE } = FieldDescriptorProto_Type;
  const mapEntry = (name: string, valueType: FieldDescriptorProto_Type, typeName = "") => ({
    name,
    options: { mapEntry: true },
    field: [
      { name: "key", number: 1, label: OPTIONAL, type: STRING, jsonName: "key" },
      { name: "value", number: 2, label: OPTIONAL, type: valueType, typeName, jsonName: "value" },
    ],
  });
  const file = create(FileDescriptorProtoSchema, {
    name: "test/nested_secret.proto",
    package: "test",
    syntax: "proto3",
    dependency: ["csi/v1/csi.proto"],
    messageType: [
      {
        name: "Inner",
        field: [
          {
            name: "creds",
            number: 1,
            label: REPEATED,
            type: MESSAGE,
            typeName: ".test.Inner.CredsEntry",
            jsonName: "creds",
            options: secretOption,
          },
          { name: "token", number: 2, label: OPTIONAL, type: STRING, jsonName: "token", options: secretOption },
          { name: "visible", number: 3, label: OPTIONAL, type: STRING, jsonName: "visible" },
        ],
        nestedType: [mapEntry("CredsEntry", STRING)],
      },
      {
        name: "Outer",
        field: [
          { name: "inner", number: 1, label: OPTIONAL, type: MESSAGE, typeName: ".test.Inner", jsonName: "inner" },
          { name: "list", number: 2, label: REPEATED, type: MESSAGE, typeName: ".test.Inner", jsonName: "list" },
          { name: "by_name", number: 3, label: REPEATED, type: MESSAGE, typeName: ".test.Outer.ByNameEntry", jsonName: "byName" },
          { name: "plain", number: 4, label: OPTIONAL, type: STRING, jsonName: "plain" },
        ],
        nestedType: [mapEntry("ByNameEntry", MESSAGE, ".test.Inner")],
      },
    ],
  });
  const registry = createFileRegistry(file, (name) =>
    name === "csi/v1/csi.proto"
      ? file_csi_v1_csi
      : name === "google/protobuf/descriptor.proto"
        ? file_google_protobuf_descriptor
        : undefined,
  );
  const outer = registry.getMessage("test.Outer");
  if (!outer) throw new Error("test.Outer not built");
  return { outer };
}

describe("redactedJson", () => {
  it("strips csi_secret fields at every depth: nested, repeated and map-valued messages", () => {
    const { outer } = nestedSecretTypes();
    const inner = (n: string) => ({ creds: { user: `${CANARY}-${n}` }, token: `${CANARY}-t${n}`, visible: `shown-${n}` });
    const message = create(outer, {
      inner: inner("a"),
      list: [inner("b"), inner("c")],
      byName: { x: inner("d") },
      plain: "plain text",
    } as never);
    const json = redactedJson(outer, message);
    const text = JSON.stringify(json);
    expect(text).not.toContain(CANARY);
    expect(json).toEqual({
      inner: { creds: REDACTED, token: REDACTED, visible: "shown-a" },
      list: [
        { creds: REDACTED, token: REDACTED, visible: "shown-b" },
        { creds: REDACTED, token: REDACTED, visible: "shown-c" },
      ],
      byName: { x: { creds: REDACTED, token: REDACTED, visible: "shown-d" } },
      plain: "plain text",
    });
  });

  it("finds the secret fields of CSI requests from the descriptor alone", () => {
    expect(carriesSecrets(CreateVolumeRequestSchema)).toBe(true);
    expect(carriesSecrets(NodeStageVolumeRequestSchema)).toBe(true);
    const json = redactedJson(
      NodePublishVolumeRequestSchema,
      create(NodePublishVolumeRequestSchema, {
        volumeId: "v1",
        targetPath: "/t",
        secrets: { password: CANARY },
        volumeContext: { k: "v" },
      }),
    );
    expect(json).toMatchObject({ volumeId: "v1", secrets: REDACTED, volumeContext: { k: "v" } });
  });
});

describe("secrets in logs", () => {
  let dir: string;
  let served: ServedRoutes | undefined;
  beforeEach(async () => {
    dir = await makeTestDir("redact");
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await removeTestDir(dir);
  });

  it("never writes a secret at any log level, in requests, responses or errors", async () => {
    const log = captureLog("trace");
    served = await serveRoutes(dir, log.logger, (r) =>
      r.service(Controller, {
        createVolume: (req) => ({ volume: { volumeId: `id-${req.name}`, capacityBytes: 1n, volumeContext: { echoed: "context" } } }),
        deleteVolume: () => {
          throw new Error("backend refused");
        },
      }),
    );
    await served.clients.controller.createVolume({
      name: "pvc-1",
      secrets: { password: CANARY, [`key-${CANARY}`]: "x" },
      parameters: { fsType: "ext4" },
    });
    await served.clients.controller.deleteVolume({ volumeId: "v", secrets: { token: CANARY } }).catch(() => undefined);
    const all = log.lines.join("\n");
    expect(all).not.toContain(CANARY);
    const requests = log.records().filter((r) => r.msg === "request");
    expect(requests.length).toBe(2);
    expect(requests[0]?.request).toMatchObject({ name: "pvc-1", secrets: REDACTED, parameters: { fsType: "ext4" } });
    expect(log.records().some((r) => r.msg === "response")).toBe(true);
  });
});
