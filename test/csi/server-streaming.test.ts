import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { CallContext } from "../../src/driver/call-context.js";
import type { ServiceHandlers } from "../../src/driver/service.js";
import { NotFound } from "../../src/errors.js";
import { BlockMetadataType, SnapshotMetadata } from "../../src/gen/csi/v1/csi_pb.js";
import { captureLog } from "../support/log-capture.js";
import { serveRoutes, type ServedRoutes } from "../support/serve.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

// Server-streaming calls pass through the same middleware as unary ones: request id, one log line,
// redaction, status errors, the caller's cancel and deadline as the handler's signal, and backpressure.

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One response message with `count` tuples starting at block `first`. */
function page(first: number, count: number) {
  return {
    blockMetadataType: BlockMetadataType.FIXED_LENGTH,
    volumeCapacityBytes: 1n << 40n,
    blockMetadata: Array.from({ length: count }, (_, i) => ({ byteOffset: BigInt((first + i) * 4096), sizeBytes: 4096n })),
  };
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const m of stream) out.push(m);
  return out;
}

async function failure(promise: Promise<unknown>): Promise<ConnectError> {
  try {
    await promise;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("the call succeeded");
}

describe("server-streaming calls", () => {
  let dir: string;
  let served: ServedRoutes | undefined;
  const log = captureLog("debug");

  beforeEach(async () => {
    dir = await makeTestDir("streaming");
    log.lines.length = 0;
  });
  afterEach(async () => {
    await served?.stop();
    served = undefined;
    await removeTestDir(dir);
  });

  const serve = async (handlers: ServiceHandlers<typeof SnapshotMetadata>, shutdownTimeoutMs?: number) => {
    served = await serveRoutes(dir, log.logger, (router) => router.service(SnapshotMetadata, handlers), { shutdownTimeoutMs });
    return served.clients.snapshotMetadata;
  };
  const finishedLines = () => log.records().filter((r) => r.msg === "call finished" || r.msg === "call failed");

  it("streams every message in order and logs one line with the request id, secrets stripped", async () => {
    const sm = await serve({
      async *getMetadataAllocated(request) {
        for (let i = 0; i < 5; i++) yield page(i * 10, 10);
        expect(request.secrets).toEqual({ password: "hunter2" });
      },
    });
    const messages = await collect(sm.getMetadataAllocated({ snapshotId: "snap-1", secrets: { password: "hunter2" } }));
    expect(messages.map((m) => Number(m.blockMetadata[0]?.byteOffset) / 4096)).toEqual([0, 10, 20, 30, 40]);
    const lines = finishedLines();
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ method: "/csi.v1.SnapshotMetadata/GetMetadataAllocated", code: "OK", snapshotId: "snap-1" });
    expect(lines[0]?.requestId).toMatch(/^[0-9a-f]{6}-[0-9a-f]{6}$/);
    expect(log.lines.join("\n")).not.toContain("hunter2");
    expect(log.lines.join("\n")).toContain("***stripped***");
  });

  it("ends a stream with the handler's status after the messages sent before it", async () => {
    const sm = await serve({
      async *getMetadataDelta() {
        yield page(0, 3);
        throw NotFound("snapshot snap-2 was deleted");
      },
    });
    const received: unknown[] = [];
    const err = await failure(
      (async () => {
        for await (const m of sm.getMetadataDelta({ baseSnapshotId: "a", targetSnapshotId: "b" })) received.push(m);
      })(),
    );
    expect(received).toHaveLength(1);
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toBe("snapshot snap-2 was deleted");
    expect(finishedLines()[0]).toMatchObject({ code: "NOT_FOUND", baseSnapshotId: "a", targetSnapshotId: "b" });
  });

  it("turns anything that is not a status error into INTERNAL", async () => {
    const sm = await serve({
      // biome-ignore lint/correctness/useYield: the handler fails before its first message
      async *getMetadataAllocated() {
        throw new TypeError("boom");
      },
    });
    const err = await failure(collect(sm.getMetadataAllocated({ snapshotId: "x" })));
    expect(err.code).toBe(Code.Internal);
    expect(finishedLines()[0]).toMatchObject({ code: "INTERNAL" });
  });

  it("answers UNIMPLEMENTED for a streaming method without a handler", async () => {
    const sm = await serve({});
    const err = await failure(collect(sm.getMetadataAllocated({ snapshotId: "x" })));
    expect(err.code).toBe(Code.Unimplemented);
  });

  it("stops the handler when the caller cancels mid-stream", async () => {
    let stopped: (reason: unknown) => void = () => undefined;
    const stoppedWith = new Promise<unknown>((resolve) => {
      stopped = resolve;
    });
    const sm = await serve({
      async *getMetadataAllocated(_request, ctx: CallContext) {
        try {
          for (let i = 0; ; i++) {
            yield page(i, 1);
            await sleep(5);
          }
        } finally {
          stopped(ctx.signal.reason);
        }
      },
    });
    const abort = new AbortController();
    let received = 0;
    const err = await failure(
      (async () => {
        for await (const _m of sm.getMetadataAllocated({ snapshotId: "x" }, { signal: abort.signal })) {
          if (++received === 3) abort.abort();
        }
      })(),
    );
    expect(err.code).toBe(Code.Canceled);
    const reason = await stoppedWith;
    expect(reason).toMatchObject({ code: Code.Canceled });
    await expect.poll(() => finishedLines()[0]).toMatchObject({ code: "CANCELED" });
  });

  it("gives the handler the caller's deadline", async () => {
    const sm = await serve({
      async *getMetadataAllocated(_request, ctx: CallContext) {
        yield page(0, 1);
        await new Promise((_resolve, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
      },
    });
    const started = Date.now();
    const err = await failure(collect(sm.getMetadataAllocated({ snapshotId: "x" }, { timeoutMs: 300 })));
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(Date.now() - started).toBeLessThan(5_000);
    await expect.poll(() => finishedLines()[0]).toMatchObject({ code: "DEADLINE_EXCEEDED" });
  });

  it("stops a handler that never looks at its signal once the deadline passes", async () => {
    let pulled = 0;
    let stopped = false;
    const sm = await serve({
      async *getMetadataAllocated() {
        try {
          for (let i = 0; ; i++) {
            pulled++;
            yield page(i, 1);
            await sleep(10);
          }
        } finally {
          stopped = true;
        }
      },
    });
    const err = await failure(collect(sm.getMetadataAllocated({ snapshotId: "x" }, { timeoutMs: 300 })));
    expect(err.code).toBe(Code.DeadlineExceeded);
    await expect.poll(() => stopped).toBe(true);
    const after = pulled;
    await sleep(100);
    expect(pulled).toBe(after);
  });

  it("cancels a stream still running when shutdown's grace period ends", async () => {
    let stoppedWith: unknown;
    const sm = await serve(
      {
        async *getMetadataAllocated(_request, ctx: CallContext) {
          try {
            for (let i = 0; ; i++) {
              yield page(i, 1);
              await sleep(20);
            }
          } finally {
            stoppedWith = ctx.signal.reason;
          }
        },
      },
      300,
    );
    const received: unknown[] = [];
    const reading = failure(
      (async () => {
        for await (const m of sm.getMetadataAllocated({ snapshotId: "x" })) received.push(m);
      })(),
    );
    await expect.poll(() => received.length).toBeGreaterThan(2);
    const started = Date.now();
    await served?.server.shutdown();
    expect(Date.now() - started).toBeLessThan(3_000);
    expect((await reading).code).toBe(Code.Unavailable);
    expect(stoppedWith).toMatchObject({ code: Code.Unavailable });
  });

  it("stops pulling from the handler while the caller does not read, and delivers everything once it does", async () => {
    const TOTAL = 400;
    const TUPLES = 4096; // about 40 KiB a message: 16 MiB in all
    let produced = 0;
    const sm = await serve({
      async *getMetadataAllocated() {
        for (let i = 0; i < TOTAL; i++) {
          produced++;
          yield page(i * TUPLES, TUPLES);
        }
      },
    });
    const stream = sm.getMetadataAllocated({ snapshotId: "x" })[Symbol.asyncIterator]();
    const first = await stream.next();
    expect(first.done).toBe(false);
    await sleep(800);
    const whilePaused = produced;
    // What the transport buffers (HTTP/2 windows, socket buffers, the writable's queue) is bounded;
    // without backpressure the handler would have produced all 400 messages by now.
    expect(whilePaused).toBeLessThan(TOTAL / 4);
    await sleep(300);
    expect(produced).toBe(whilePaused);
    let received = 1;
    let expectOffset = BigInt(TUPLES * 4096);
    for (let next = await stream.next(); !next.done; next = await stream.next()) {
      expect(next.value.blockMetadata[0]?.byteOffset).toBe(expectOffset);
      expectOffset += BigInt(TUPLES * 4096);
      received++;
    }
    expect(received).toBe(TOTAL);
  });
});
