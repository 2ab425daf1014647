/**
 * Log lines written synchronously to a file descriptor that is a non-blocking
 * pipe, as standard error can be: a slow reader gets every line whole, a reader
 * that never reads costs a bounded wait and then dropped lines (never a
 * stalled plugin), and a closed pipe costs nothing but the lines.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, constants, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { fdSink } from "../../src/log/line-sink.js";
import { makeTestDir, removeTestDir } from "../support/test-dir.js";

/** A FIFO whose reader starts reading after `delay` s (or never), opened for writing without blocking. */
async function slowReader(dir: string, delay: string): Promise<{ fd: number; reader: ChildProcess; out: string }> {
  const fifo = join(dir, "fifo");
  const out = join(dir, "out");
  await new Promise<void>((res, rej) => spawn("mkfifo", [fifo]).once("exit", (c) => (c === 0 ? res() : rej(new Error(`mkfifo ${c}`)))));
  const reader = spawn("sh", ["-c", `exec 3<"${fifo}"; sleep ${delay}; cat <&3 > "${out}"`], { stdio: "ignore" });
  for (let i = 0; ; i++) {
    try {
      return { fd: openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK), reader, out };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENXIO" || i > 500) throw err;
      await sleep(10);
    }
  }
}

const exited = (child: ChildProcess) => new Promise((res) => (child.exitCode !== null ? res(child.exitCode) : child.once("exit", res)));

describe("writing log lines to a non-blocking pipe", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTestDir("line-sink");
  });
  afterEach(async () => {
    await removeTestDir(dir);
  });

  it("waits for a slow reader and writes every line whole", async () => {
    const { fd, reader, out } = await slowReader(dir, "0.3");
    const sink = fdSink(fd);
    // 400 lines of 1 KiB: six times what the pipe holds, so writes meet EAGAIN and partial writes.
    const lines = Array.from({ length: 400 }, (_, i) => `${JSON.stringify({ i, pad: "x".repeat(1000) })}\n`);
    for (const line of lines) sink(line);
    closeSync(fd);
    await exited(reader);
    expect(readFileSync(out, "utf8")).toBe(lines.join(""));
  });

  it("gives up on a reader that never reads: about a second, then each line one try", async () => {
    const { fd, reader } = await slowReader(dir, "30");
    try {
      const sink = fdSink(fd);
      const started = performance.now();
      for (let i = 0; i < 400; i++) sink(`${JSON.stringify({ i, pad: "x".repeat(1000) })}\n`);
      const tookMs = performance.now() - started;
      // The first line the pipe cannot take waits up to 1 s; the others are dropped at once, not after 1 s each.
      expect(tookMs).toBeGreaterThan(900);
      expect(tookMs).toBeLessThan(10_000);
    } finally {
      closeSync(fd);
      reader.kill("SIGKILL");
      await exited(reader);
    }
  });

  it("drops lines to a pipe whose reader is gone, without throwing", async () => {
    const { fd, reader } = await slowReader(dir, "0");
    reader.kill("SIGKILL");
    await exited(reader);
    const sink = fdSink(fd);
    expect(() => {
      for (let i = 0; i < 10; i++) sink("a line\n");
    }).not.toThrow();
    closeSync(fd);
  });
});
