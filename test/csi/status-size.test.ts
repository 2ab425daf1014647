import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MAX_MESSAGE_BYTES } from "../../src/csi/errors.js";
import { cutToEncodedLength } from "../../src/csi/status-size.js";
import { MAX_STATUS_MESSAGE_BYTES } from "../../src/csi/transport-limits.js";
import { Identity } from "../../src/gen/csi/v1/csi_pb.js";
import { captureLog } from "../support/log-capture.js";
import { type ServedRoutes, serveRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

describe("cutToEncodedLength", () => {
  it("leaves a message that fits as it is and cuts one that does not, counting percent-encoded bytes", () => {
    expect(cutToEncodedLength("volume not found", 100)).toBe("volume not found");
    expect(cutToEncodedLength("a".repeat(100), 100)).toBe("a".repeat(100));
    const cut = cutToEncodedLength("a".repeat(101), 100);
    expect(cut).toBe(`${"a".repeat(92)}...(cut)`); // the marker is 8 bytes encoded
    expect(encodeURI(cut).length).toBe(100);
    // "é" is 6 bytes once percent-encoded: whole characters only.
    const accents = cutToEncodedLength("é".repeat(100), 100);
    expect(encodeURI(accents).length).toBeLessThanOrEqual(100);
    expect(accents).toBe(`${"é".repeat(15)}...(cut)`);
  });

  it("replaces lone surrogates, which the status encoder cannot encode", () => {
    const text = cutToEncodedLength("bad \uD800 name", 100);
    expect(text).toBe("bad \uFFFD name");
    expect(() => encodeURI(text)).not.toThrow();
  });
});

describe("status messages on the wire", () => {
  let dir: string;
  let served: ServedRoutes | undefined;
  const log = captureLog("silent");

  beforeEach(async () => {
    dir = await makeTestDir("status-size");
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await removeTestDir(dir);
  });

  it.each([
    ["ASCII", "x"],
    ["a character that percent-encodes", "é"],
    ["a line break", "\n"],
  ])("arrive promptly and bounded when a handler fails with 1 MiB of %s, and the connection keeps serving", async (_label, char) => {
    served = await serveRoutes(dir, log.logger, (r) =>
      r.service(Identity, {
        getPluginInfo: () => {
          throw new Error(char.repeat(1024 * 1024));
        },
        probe: () => ({ ready: true }),
      }),
    );
    const started = Date.now();
    const err = (await served.clients.identity.getPluginInfo({}, { timeoutMs: 10_000 }).catch((e: unknown) => e)) as ConnectError;
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err).toBeInstanceOf(ConnectError);
    expect(err.code).toBe(Code.Internal);
    // The handler's message is bounded where the status is made (errors.ts), well under the transport's cap.
    expect(encodeURI(err.rawMessage).length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    expect(MAX_MESSAGE_BYTES).toBeLessThan(MAX_STATUS_MESSAGE_BYTES);
    expect(err.rawMessage).toMatch(/ … \(message cut from \d+ bytes\)$/);
    expect(err.rawMessage.startsWith(char === "\n" ? "\\n".repeat(10) : char.repeat(10))).toBe(true);
    expect((await served.clients.identity.probe({}, { timeoutMs: 2_000 })).ready).toBe(true);
  });
});
