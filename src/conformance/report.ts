import type { CheckGroup, RuleLevel } from "./check.js";

export type CheckStatus = "passed" | "failed" | "skipped" | "warning";

export interface CheckResult {
  readonly id: string;
  readonly group: CheckGroup;
  readonly title: string;
  readonly level: RuleLevel;
  readonly rule: string;
  readonly status: CheckStatus;
  readonly durationMs: number;
  /** Why it failed or was skipped. */
  readonly message?: string;
  /** The steps the check went through (the last one is where a failure happened). */
  readonly steps: readonly string[];
  readonly notes: readonly string[];
  /** Undo steps that failed after the check (the resource may be left behind). */
  readonly cleanupErrors: readonly string[];
}

export interface ReportSummary {
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly warnings: number;
}

export interface ConformanceReport {
  readonly tool: "csi-conformance";
  readonly specVersion: "1.12.0";
  readonly startedAt: string;
  readonly durationMs: number;
  readonly endpoint: string;
  readonly controllerEndpoint: string;
  readonly plugin: { readonly name: string; readonly vendorVersion: string } | undefined;
  readonly capabilities: {
    readonly plugin: readonly string[];
    readonly controller: readonly string[] | string;
    readonly node: readonly string[] | string;
  };
  /** Set when the suite could not run at all (no connection, no Identity service). */
  readonly fatal?: string;
  readonly summary: ReportSummary;
  readonly checks: readonly CheckResult[];
}

export function summarize(results: readonly CheckResult[]): ReportSummary {
  const count = (status: CheckStatus) => results.filter((r) => r.status === status).length;
  return { passed: count("passed"), failed: count("failed"), skipped: count("skipped"), warnings: count("warning") };
}

/** Whether the run should make the tool exit non-zero. */
export function reportFailed(report: ConformanceReport): boolean {
  return report.fatal !== undefined || report.summary.failed > 0;
}

const MARK: Record<CheckStatus, string> = { passed: "PASS", failed: "FAIL", skipped: "SKIP", warning: "WARN" };

function indent(text: string, prefix: string): string {
  return text
    .split("\n")
    .map((line) => prefix + line)
    .join("\n");
}

/** One check as the readable report shows it. */
export function formatResult(result: CheckResult, options: { verbose?: boolean } = {}): string {
  const level = result.level === "SHOULD" ? " [SHOULD]" : "";
  const lines = [`  ${MARK[result.status]}  ${result.title}${level}  (${result.id}, ${formatDuration(result.durationMs)})`];
  if (result.status === "skipped") {
    if (result.message !== undefined) lines.push(indent(`skipped: ${result.message}`, "        "));
    return lines.join("\n");
  }
  if (result.status === "failed" || result.status === "warning") {
    if (result.message !== undefined) lines.push(indent(result.message, "        "));
    lines.push(indent(`rule: ${result.rule}`, "        "));
    const last = result.steps[result.steps.length - 1];
    if (last !== undefined) lines.push(indent(`during: ${last}`, "        "));
  }
  for (const error of result.cleanupErrors) lines.push(indent(`cleanup: ${error}`, "        "));
  if (options.verbose === true || result.status !== "passed")
    for (const note of result.notes) lines.push(indent(`note: ${note}`, "        "));
  return lines.join("\n");
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatHeader(report: Pick<ConformanceReport, "plugin" | "endpoint" | "controllerEndpoint" | "capabilities">): string {
  const lines = [
    `CSI ${"1.12.0"} conformance: ${report.plugin !== undefined ? `${report.plugin.name} ${report.plugin.vendorVersion}` : "(unknown plugin)"}`,
    `  endpoint: ${report.endpoint}${report.controllerEndpoint !== report.endpoint ? `, controller endpoint: ${report.controllerEndpoint}` : ""}`,
    `  plugin capabilities: ${report.capabilities.plugin.join(", ") || "(none)"}`,
    `  controller capabilities: ${formatCaps(report.capabilities.controller)}`,
    `  node capabilities: ${formatCaps(report.capabilities.node)}`,
  ];
  return lines.join("\n");
}

function formatCaps(caps: readonly string[] | string): string {
  if (typeof caps === "string") return `(${caps})`;
  return caps.join(", ") || "(none)";
}

/** The closing line: "N passed, N failed, ...". */
export function formatSummary(summary: ReportSummary, durationMs: number): string {
  const extra = [
    summary.skipped > 0 ? `${summary.skipped} skipped` : "",
    summary.warnings > 0 ? `${summary.warnings} warnings` : "",
  ].filter((s) => s !== "");
  return `${summary.passed} passed, ${summary.failed} failed${extra.length > 0 ? `, ${extra.join(", ")}` : ""} (${formatDuration(durationMs)})`;
}

/** The whole readable report, grouped as the checks ran. */
export function formatReport(report: ConformanceReport, options: { verbose?: boolean } = {}): string {
  const parts = [formatHeader(report), ""];
  if (report.fatal !== undefined) parts.push(`FATAL: ${report.fatal}`, "");
  let group: string | undefined;
  for (const result of report.checks) {
    if (result.group !== group) {
      group = result.group;
      parts.push(group);
    }
    parts.push(formatResult(result, options));
  }
  const failed = report.checks.filter((r) => r.status === "failed");
  if (failed.length > 0) {
    parts.push("", "Failed checks:");
    for (const result of failed) parts.push(`  - ${result.id}: ${(result.message ?? "").split("\n")[0] ?? ""}`);
  }
  parts.push("", formatSummary(report.summary, report.durationMs));
  return parts.join("\n");
}
