import { readFile } from "node:fs/promises";
import { expect } from "vitest";
import { formatReport, type ConformanceReport } from "../../src/conformance/report.js";

/** CAP_SYS_RESOURCE (bit 24): ext4's online resize ioctl needs it; some sandboxes withhold it even from root. */
export async function hasCapSysResource(): Promise<boolean> {
  const status = await readFile("/proc/self/status", "utf8");
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  return hex !== undefined && (BigInt(`0x${hex}`) & (1n << 24n)) !== 0n;
}

/** Every check must pass (or be skipped); the failure message is the whole readable report. */
export function expectConformant(report: ConformanceReport): void {
  const text = formatReport(report);
  expect(report.fatal, text).toBeUndefined();
  const failed = report.checks.filter((c) => c.status === "failed").map((c) => `${c.id}: ${c.message ?? ""}`);
  expect(failed, text).toEqual([]);
  // The suite really ran: most checks apply to a driver with this many capabilities.
  expect(report.summary.passed, text).toBeGreaterThan(100);
}
