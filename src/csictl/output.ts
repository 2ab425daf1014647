import { stringify } from "yaml";

/**
 * How csictl prints: `--output json` (the protobuf JSON form of the answer,
 * for scripts), `yaml`, or `table` (the default: aligned columns, sizes in
 * Gi/Mi, times in local form, colours only on a terminal and without
 * NO_COLOR).
 */
export type OutputFormat = "table" | "json" | "yaml";

export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === "table" || value === "json" || value === "yaml") return value ?? "table";
  throw new Error(`--output takes table, json or yaml, not ${JSON.stringify(value)}`);
}

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
}

export function style(enabled: boolean): Style {
  const wrap = (code: string) => (text: string) => (enabled ? `\u001b[${code}m${text}\u001b[0m` : text);
  return { bold: wrap("1"), dim: wrap("2"), red: wrap("31"), green: wrap("32") };
}

export function colorsWanted(stream: NodeJS.WriteStream, env: NodeJS.ProcessEnv, noColor: boolean): boolean {
  return stream.isTTY === true && !noColor && env.NO_COLOR === undefined && env.TERM !== "dumb";
}

const BINARY = ["", "Ki", "Mi", "Gi", "Ti", "Pi"];

/** 10737418240 -> "10Gi"; 1536 MiB -> "1.5Gi". */
export function humanSize(bytes: bigint | number | string): string {
  let value = Number(bytes);
  if (!Number.isFinite(value)) return String(bytes);
  let unit = 0;
  while (value >= 1024 && unit < BINARY.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = Number.isInteger(value) ? String(value) : value.toFixed(1).replace(/\.0$/, "");
  return `${shown}${BINARY[unit]}${unit === 0 ? "B" : ""}`;
}

/** A protobuf JSON timestamp ("2026-12-04T10:00:00Z") in the local form of this machine. */
export function localTime(iso: unknown): string {
  if (typeof iso !== "string") return "";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** Aligned columns; the header in bold. */
export function table(headers: readonly string[], rows: readonly (readonly string[])[], s: Style): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd();
  return [s.bold(line(headers)), ...rows.map(line)].join("\n");
}

export function render(format: OutputFormat, json: unknown, tableText: () => string): string {
  if (format === "json") return JSON.stringify(json, null, 2);
  if (format === "yaml") return stringify(json).trimEnd();
  return tableText();
}

/** A generic readable form of a JSON answer: `key: value` lines, nested objects indented. */
export function keyValues(json: unknown, indent = ""): string {
  if (json === null || typeof json !== "object") return `${indent}${String(json)}`;
  const lines: string[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (value !== null && typeof value === "object") {
      if (Array.isArray(value) && value.every((v) => typeof v !== "object")) lines.push(`${indent}${key}: ${value.join(", ")}`);
      else lines.push(`${indent}${key}:`, keyValues(value, `${indent}  `));
    } else {
      const shown = /bytes$/i.test(key)
        ? `${humanSize(String(value))} (${String(value)})`
        : /time$/i.test(key)
          ? localTime(value)
          : String(value);
      lines.push(`${indent}${key}: ${shown}`);
    }
  }
  return lines.join("\n");
}
