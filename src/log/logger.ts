import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger };
export type LogFormat = "json" | "pretty";

export { LOG_LEVELS } from "./levels.js";

export interface LoggerOptions {
  level: LevelWithSilent;
  format: LogFormat;
  /** Where lines go; standard error unless a test captures them. */
  destination?: NodeJS.WritableStream;
}

/**
 * The process logger: one JSON object a line (or a human-readable rendering),
 * written synchronously so a crash never loses the line that explains it.
 */
export async function createLogger(options: LoggerOptions): Promise<Logger> {
  const base = { level: options.level, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  if (options.format === "pretty") {
    // Loaded only on request: a node plugin running with JSON logs never pays for it.
    const { default: pretty } = await import("pino-pretty");
    return pino(base, pretty({ destination: options.destination ?? 2, sync: true, translateTime: "SYS:HH:MM:ss.l" }));
  }
  return pino(base, options.destination ?? pino.destination({ dest: 2, sync: true }));
}

/** A logger that drops everything, for code paths that run without one. */
export const silentLogger: Logger = pino({ level: "silent" });
