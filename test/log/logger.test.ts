/**
 * The process logger's lines: pino's layout (level number, ISO time, pid,
 * bindings, fields, msg, in that order), level filtering, child bindings, and
 * values JSON.stringify refuses (BigInt, circular objects, a throwing toJSON),
 * none of which may cost the caller more than the line's fields.
 */
import { describe, expect, it } from "vitest";
import { jsonFields } from "../../src/log/json-fields.js";
import { LOG_LEVELS, type LogLevel } from "../../src/log/levels.js";
import { silentLogger } from "../../src/log/logger.js";
import { captureLog } from "../support/log-capture.js";

describe("the process logger", () => {
  it("writes pino's line: level, time, pid, bindings, fields, msg", () => {
    const log = captureLog("info");
    const before = Date.now();
    log.logger
      .child({ method: "/csi.v1.Node/NodeStageVolume", requestId: "r1" })
      .info({ volumeId: "v1", sizeBytes: 1024 }, "volume staged");
    const line = log.lines[0] ?? "";
    expect(line).toMatch(
      new RegExp(
        `^\\{"level":30,"time":"[0-9TZ:.-]+","pid":${process.pid},"method":"/csi.v1.Node/NodeStageVolume","requestId":"r1","volumeId":"v1","sizeBytes":1024,"msg":"volume staged"\\}$`,
      ),
    );
    const time = Date.parse(String(log.records()[0]?.time));
    expect(time).toBeGreaterThanOrEqual(before - 1);
    expect(time).toBeLessThanOrEqual(Date.now() + 1);
  });

  it("takes a message alone, fields alone, and leaves out what is undefined", () => {
    const log = captureLog("trace");
    log.logger.warn("server stopped");
    log.logger.error({ reason: "x", absent: undefined });
    const [first, second] = log.records();
    expect(first).toEqual({ level: 40, time: expect.any(String), pid: process.pid, msg: "server stopped" });
    expect(second).toEqual({ level: 50, time: expect.any(String), pid: process.pid, reason: "x" });
  });

  it("writes a line at or above its level only, and nothing when silent", () => {
    const numbers: Record<Exclude<LogLevel, "silent">, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
    for (const level of LOG_LEVELS) {
      const log = captureLog(level);
      for (const method of ["trace", "debug", "info", "warn", "error", "fatal"] as const) log.logger[method](method);
      const threshold = level === "silent" ? Number.POSITIVE_INFINITY : numbers[level];
      const expected = Object.entries(numbers).filter(([, n]) => n >= threshold);
      expect(
        log.records().map((r) => [r.msg, r.level]),
        level,
      ).toEqual(expected);
      for (const [name, n] of Object.entries(numbers)) expect(log.logger.isLevelEnabled(name as LogLevel)).toBe(n >= threshold);
      expect(log.logger.isLevelEnabled("silent")).toBe(false);
      expect(log.logger.level).toBe(level);
    }
    expect(silentLogger.isLevelEnabled("fatal")).toBe(false);
    silentLogger.fatal({ a: 1 }, "dropped");
  });

  it("gives a child its parent's level and bindings plus its own", () => {
    const log = captureLog("debug");
    const child = log.logger.child({ backend: "local" }).child({ dataDir: "/var/lib/x" });
    child.trace("not written");
    child.debug({ n: 1 }, "written");
    expect(log.records()).toEqual([
      { level: 20, time: expect.any(String), pid: process.pid, backend: "local", dataDir: "/var/lib/x", n: 1, msg: "written" },
    ]);
  });

  it("escapes what it writes, so every line is one JSON object", () => {
    const log = captureLog("info");
    log.logger.info({ path: 'a"b\\c\nd', lone: "\ud800" }, 'quote " and newline \n');
    expect(log.lines).toHaveLength(1);
    expect(log.records()[0]).toMatchObject({ path: 'a"b\\c\nd', lone: "\ud800", msg: 'quote " and newline \n' });
  });

  it("writes a BigInt as a number, a circular value as [Circular], and survives a throwing toJSON", () => {
    expect(jsonFields({ size: 10n ** 12n })).toBe(',"size":1000000000000');
    expect(jsonFields({ huge: 2n ** 70n })).toBe(`,"huge":"${(2n ** 70n).toString()}"`);
    const loop: Record<string, unknown> = { name: "a" };
    loop.self = loop;
    const shared = { x: 1 };
    expect(JSON.parse(`{${jsonFields({ loop, twice: [shared, shared] }).slice(1)}}`)).toEqual({
      loop: { name: "a", self: "[Circular]" },
      twice: [{ x: 1 }, { x: 1 }],
    });
    const hostile = {
      toJSON() {
        throw new Error("no");
      },
    };
    const log = captureLog("info");
    log.logger.info({ hostile }, "still written");
    expect(log.records()[0]).toMatchObject({ logFieldsError: "no", msg: "still written" });
    expect(jsonFields({})).toBe("");
  });
});
