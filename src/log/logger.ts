/**
 * The process logger: one JSON object a line, written synchronously so a crash
 * never loses the line that explains it. The lines are pino's
 * (`{"level":30,"time":"<ISO 8601>","pid":1,...fields,"msg":"..."}`), which log
 * pipelines already parse; `--log-format pretty` renders them with pino-pretty,
 * loaded only then.
 *
 * Written here rather than taken from pino, which the driver used before: it
 * logs through six level methods and `child`, and loading pino (with
 * sonic-boom, thread-stream and node:worker_threads) was about 10 ms of a node
 * plugin's start-up and half a MiB of its idle heap, paid on every node
 * (bench/RESULTS.md, "Against the runtime's floor"). What pino did for those
 * calls is here: level filtering, bindings, BigInt and circular values
 * (json-fields.ts), and writes that survive a slow or closed standard error
 * (line-sink.ts).
 */
import { jsonFields, type LogFields } from "./json-fields.js";
import { LEVEL_NUMBERS, type LogLevel } from "./levels.js";
import { fdSink, streamSink, type LineSink } from "./line-sink.js";

export type { LogFields } from "./json-fields.js";
export { LOG_LEVELS, type LogLevel } from "./levels.js";
export type LogFormat = "json" | "pretty";

export interface LogMethod {
  (fields: LogFields, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  readonly level: LogLevel;
  isLevelEnabled(level: LogLevel): boolean;
  /** A logger whose every line also carries `bindings`. */
  child(bindings: LogFields): Logger;
  readonly fatal: LogMethod;
  readonly error: LogMethod;
  readonly warn: LogMethod;
  readonly info: LogMethod;
  readonly debug: LogMethod;
  readonly trace: LogMethod;
}

export interface LoggerOptions {
  level: LogLevel;
  format: LogFormat;
  /** Where lines go; standard error unless a test captures them. */
  destination?: NodeJS.WritableStream;
}

class JsonLogger implements Logger {
  readonly #threshold: number;
  readonly #sink: LineSink;
  /** The bindings as JSON members, written after the time: `,"pid":1,...`. */
  readonly #bindings: string;

  constructor(
    readonly level: LogLevel,
    sink: LineSink,
    bindings: string,
  ) {
    this.#threshold = LEVEL_NUMBERS[level];
    this.#sink = sink;
    this.#bindings = bindings;
  }

  isLevelEnabled(level: LogLevel): boolean {
    return level !== "silent" && LEVEL_NUMBERS[level] >= this.#threshold;
  }

  child(bindings: LogFields): Logger {
    return new JsonLogger(this.level, this.#sink, this.#bindings + jsonFields(bindings));
  }

  readonly fatal: LogMethod = (fields: LogFields | string, msg?: string) => this.#write(60, fields, msg);
  readonly error: LogMethod = (fields: LogFields | string, msg?: string) => this.#write(50, fields, msg);
  readonly warn: LogMethod = (fields: LogFields | string, msg?: string) => this.#write(40, fields, msg);
  readonly info: LogMethod = (fields: LogFields | string, msg?: string) => this.#write(30, fields, msg);
  readonly debug: LogMethod = (fields: LogFields | string, msg?: string) => this.#write(20, fields, msg);
  readonly trace: LogMethod = (fields: LogFields | string, msg?: string) => this.#write(10, fields, msg);

  #write(level: number, fields: LogFields | string, msg: string | undefined): void {
    if (level < this.#threshold) return;
    let line = `{"level":${level},"time":"${new Date().toISOString()}"${this.#bindings}`;
    if (typeof fields === "string") msg = fields;
    else line += jsonFields(fields);
    if (msg !== undefined) line += `,"msg":${JSON.stringify(msg)}`;
    this.#sink(`${line}}\n`);
  }
}

/** A logger writing to `destination`: its lines carry the process's pid, as pino's did. */
export function createStreamLogger(level: LogLevel, destination: NodeJS.WritableStream): Logger {
  return new JsonLogger(level, streamSink(destination), `,"pid":${process.pid}`);
}

export async function createLogger(options: LoggerOptions): Promise<Logger> {
  if (options.format === "pretty") {
    // Loaded only on request: a node plugin running with JSON logs never pays for it.
    const { default: pretty } = await import("pino-pretty");
    const rendered = pretty({ destination: options.destination ?? 2, sync: true, translateTime: "SYS:HH:MM:ss.l" });
    return createStreamLogger(options.level, rendered);
  }
  if (options.destination !== undefined) return createStreamLogger(options.level, options.destination);
  return new JsonLogger(options.level, fdSink(2), `,"pid":${process.pid}`);
}

/** A logger that drops everything, for code paths that run without one. */
export const silentLogger: Logger = new JsonLogger("silent", () => {}, "");
