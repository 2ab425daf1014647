import { Writable } from "node:stream";
import { createStreamLogger, type Logger, type LogLevel } from "../../src/log/logger.js";

export interface CapturedLog {
  readonly logger: Logger;
  /** Every line written, raw. */
  readonly lines: string[];
  /** Parsed JSON lines. */
  records(): Record<string, unknown>[];
}

/** A logger whose output is kept in memory, for asserting what was (and was not) logged. */
export function captureLog(level: LogLevel = "trace"): CapturedLog {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n")) if (line !== "") lines.push(line);
      done();
    },
  });
  const logger = createStreamLogger(level, stream);
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
