/**
 * csi-conformance: check any CSI endpoint against the CSI v1.12 spec.
 *   npm run conformance -- --endpoint unix:///path/csi.sock [--controller-endpoint ...] [--json out.json]
 */
import { writeFile } from "node:fs/promises";
import { allChecks } from "./checks/index.js";
import { parseCli, UsageError, USAGE } from "./cli.js";
import { formatHeader, formatReport, formatResult, formatSummary, reportFailed } from "./report.js";
import { runConformance, selectChecks } from "./runner.js";

function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}

async function main(): Promise<number> {
  let cli;
  try {
    cli = await parseCli(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`csi-conformance: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (cli.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (cli.list) {
    for (const check of selectChecks(cli.conformance, allChecks)) process.stdout.write(`${check.id}\t${check.level}\t${check.title}\n`);
    return 0;
  }

  const toStdout = cli.jsonPath === "-";
  const out = (text: string) => (toStdout ? process.stderr : process.stdout).write(`${text}\n`);
  let group: string | undefined;
  let report;
  try {
    report = await runConformance(cli.conformance, {
      onStart(header) {
        out(formatHeader(header));
        out("");
      },
      onResult(result) {
        if (result.group !== group) {
          group = result.group;
          out(group);
        }
        out(formatResult(result, { verbose: cli.verbose }));
      },
    });
  } catch (err) {
    process.stderr.write(`csi-conformance: ${(err as Error).message}\n`);
    return 2;
  }

  if (report.fatal !== undefined) {
    out(formatReport(report, { verbose: cli.verbose }));
  } else {
    const failed = report.checks.filter((r) => r.status === "failed");
    if (failed.length > 0) {
      out("");
      out("Failed checks:");
      for (const result of failed) out(`  - ${result.id}: ${(result.message ?? "").split("\n")[0] ?? ""}`);
    }
    out("");
    out(formatSummary(report.summary, report.durationMs));
  }
  if (cli.jsonPath !== undefined) {
    const json = `${JSON.stringify(report, jsonReplacer, 2)}\n`;
    if (toStdout) process.stdout.write(json);
    else await writeFile(cli.jsonPath, json);
  }
  if (report.fatal !== undefined) return 2;
  return reportFailed(report) ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`csi-conformance: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 2;
  },
);
