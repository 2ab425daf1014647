import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, totalmem, release } from "node:os";

export const KiB = 1024;
export const MiB = 1024 * KiB;

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (getconf CLK_TCK; 100 on Linux). */
export const CLOCK_TICKS: number = (() => {
  try {
    const n = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** A field of /proc/<pid>/status in bytes (VmRSS, VmHWM, ...). */
export function statusBytes(pid: number, field: "VmRSS" | "VmHWM" | "RssAnon" | "RssFile" | "RssShmem"): number {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(text);
  if (!m) throw new Error(`/proc/${pid}/status has no ${field}`);
  return Number(m[1]) * KiB;
}

/** Resident set size (VmRSS) of a process, in bytes. */
export function rssBytes(pid: number): number {
  return statusBytes(pid, "VmRSS");
}

/** The RSS breakdown kept in results: total, anonymous (heap), file-backed (code) and peak. */
export interface RssSample {
  readonly rss: number;
  readonly anon: number;
  readonly file: number;
  readonly hwm: number;
}

export function rssSample(pid: number): RssSample {
  return {
    rss: statusBytes(pid, "VmRSS"),
    anon: statusBytes(pid, "RssAnon"),
    file: statusBytes(pid, "RssFile"),
    hwm: statusBytes(pid, "VmHWM"),
  };
}

/** CPU time (user + system) a process has used, in microseconds, from /proc/<pid>/stat. */
export function cpuMicros(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) may hold spaces and parentheses: fields resume after the last ')'.
  const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // rest[0] is field 3 (state); utime and stime are fields 14 and 15.
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot parse /proc/${pid}/stat`);
  return ((utime + stime) * 1e6) / CLOCK_TICKS;
}

export interface Machine {
  readonly cpuModel: string;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly kernel: string;
  readonly node: string;
  readonly os: string;
}

export function describeMachine(): Machine {
  let os = "linux";
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    os = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? os;
  } catch {
    // keep the default
  }
  const model = cpus()[0]?.model.trim() ?? "unknown";
  return { cpuModel: model, cores: cpus().length, memoryBytes: totalmem(), kernel: release(), node: process.version, os };
}

export const mib = (bytes: number): number => bytes / MiB;
