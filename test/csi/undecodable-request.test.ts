import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { silentLogger } from "../../src/log/logger.js";
import { grpcFrame, rawGrpcRequest } from "../support/fuzz/raw-grpc.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// A request whose bytes do not decode is the caller's error, not the server's (INVALID_ARGUMENT, not INTERNAL).

describe("a request whose bytes are not a valid message", () => {
  let dir: string;
  let served: ServedRoutes | undefined;
  let calls = 0;

  beforeEach(async () => {
    dir = await makeTestDir("undecodable");
    calls = 0;
    served = await serveRoutes(dir, silentLogger, (r) =>
      r.service(Identity, {
        getPluginInfo: () => {
          calls++;
          return { name: "test.csi.example.com", vendorVersion: "1.0" };
        },
        getPluginCapabilities: () => ({}),
        probe: () => ({ ready: true }),
      }),
    );
  });
  afterEach(async () => {
    await served?.stop();
    await removeTestDir(dir);
  });

  it("is answered INVALID_ARGUMENT without reaching the handler", async () => {
    // Field 1 (string) with a length running past the end of the message.
    const answer = await rawGrpcRequest(
      join(dir, "csi.sock"),
      "/csi.v1.Identity/GetPluginInfo",
      grpcFrame(Uint8Array.of(0x0a, 0x05, 0x61)),
      5_000,
    );
    expect(answer.grpcStatus).toBe(Code.InvalidArgument);
    expect(calls).toBe(0);
  });

  it("leaves valid bytes alone", async () => {
    const answer = await rawGrpcRequest(join(dir, "csi.sock"), "/csi.v1.Identity/GetPluginInfo", grpcFrame(new Uint8Array(0)), 5_000);
    expect(answer.grpcStatus).toBe(0);
    expect(calls).toBe(1);
  });
});
