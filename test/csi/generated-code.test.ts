import { execFileSync } from "node:child_process";
import { readFile, readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { file_csi_v1_csi } from "../../src/gen/csi/v1/csi_pb.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else out.push(path);
  }
  return out.sort();
}

describe("generated CSI bindings", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await makeTestDir("codegen");
    execFileSync("node_modules/.bin/buf", ["generate", "--output", dir], { stdio: "pipe" });
  });
  afterAll(() => removeTestDir(dir));

  it("are exactly what `npm run generate` produces from proto/", async () => {
    const committedRoot = "src/gen";
    const generatedRoot = join(dir, "src/gen");
    const committed = (await listFiles(committedRoot)).map((f) => relative(committedRoot, f));
    const generated = (await listFiles(generatedRoot)).map((f) => relative(generatedRoot, f));
    expect(generated).toEqual(committed);
    for (const file of committed) {
      expect(await readFile(join(generatedRoot, file), "utf8"), `${file} is stale: run npm run generate`).toBe(
        await readFile(join(committedRoot, file), "utf8"),
      );
    }
  });
});

describe("csi.proto wire format", () => {
  it("declares the five CSI v1.12 services with their methods", () => {
    const services = Object.fromEntries(file_csi_v1_csi.services.map((s) => [s.name, s.methods.map((m) => m.name)]));
    expect(Object.keys(services).sort()).toEqual(["Controller", "GroupController", "Identity", "Node", "SnapshotMetadata"]);
    expect(services.Controller).toHaveLength(15);
    expect(services.Node).toHaveLength(8);
    const streaming = file_csi_v1_csi.services.find((s) => s.name === "SnapshotMetadata")?.methods.map((m) => m.methodKind);
    expect(streaming).toEqual(["server_streaming", "server_streaming"]);
  });

  it("keeps field numbers and types of messages the spec defines", () => {
    const msg = (name: string) => {
      const found = file_csi_v1_csi.messages.find((m) => m.name === name);
      if (!found) throw new Error(`missing ${name}`);
      return Object.fromEntries(found.fields.map((f) => [f.name, f.number]));
    };
    expect(msg("CreateVolumeRequest")).toEqual({
      name: 1,
      capacity_range: 2,
      volume_capabilities: 3,
      parameters: 4,
      secrets: 5,
      volume_content_source: 6,
      accessibility_requirements: 7,
      mutable_parameters: 8,
    });
    expect(msg("NodePublishVolumeRequest")).toEqual({
      volume_id: 1,
      publish_context: 2,
      staging_target_path: 3,
      target_path: 4,
      volume_capability: 5,
      readonly: 6,
      secrets: 7,
      volume_context: 8,
    });
    expect(msg("Snapshot")).toEqual({
      size_bytes: 1,
      snapshot_id: 2,
      source_volume_id: 3,
      creation_time: 4,
      ready_to_use: 5,
      group_snapshot_id: 6,
    });
    expect(file_csi_v1_csi.extensions.map((e) => [e.name, e.number]).sort()).toEqual(
      [
        ["alpha_enum", 1060],
        ["alpha_enum_value", 1060],
        ["alpha_field", 1060],
        ["alpha_message", 1060],
        ["alpha_method", 1060],
        ["alpha_service", 1060],
        ["csi_secret", 1059],
      ].sort(),
    );
  });
});
