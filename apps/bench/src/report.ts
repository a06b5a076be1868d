/** Numbers to text: latency statistics and aligned tables. */
import path from "node:path";

const repositoryRoot = path.resolve(import.meta.dirname, "../../..");

/** A path as the reader can use it from the repository's root. */
export const shownPath = (file: string) => path.relative(repositoryRoot, file);

export interface LatencySummary {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

/** Nearest-rank percentiles of latencies in milliseconds (sorts `latenciesMs` in place). */
export function summarize(latenciesMs: number[] | Float64Array): LatencySummary {
  const sorted = latenciesMs.sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return {
    count: sorted.length,
    p50Ms: at(0.5) ?? Number.NaN,
    p99Ms: at(0.99) ?? Number.NaN,
    maxMs: sorted[sorted.length - 1] ?? Number.NaN,
  };
}

/** 1234567 → "1,234,567"; fractions only where the number is small. */
export function formatNumber(value: number, digits?: number): string {
  if (!Number.isFinite(value)) return "–";
  const fraction = digits ?? (Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2);
  return value.toLocaleString("en-US", {
    minimumFractionDigits: fraction,
    maximumFractionDigits: fraction,
  });
}

/** Milliseconds with about three significant digits: 0.123, 1.23, 12.3, 123. */
export const ms = (value: number) =>
  formatNumber(value, value >= 100 ? 0 : value >= 10 ? 1 : value >= 1 ? 2 : 3);
export const ratio = (value: number) => (Number.isFinite(value) ? `${value.toFixed(2)}×` : "–");
export const percent = (value: number) =>
  Number.isFinite(value) ? `${Math.round(value * 100)}%` : "–";
export const mebibytes = (bytes: number) => `${formatNumber(bytes / 2 ** 20, 1)} MiB`;

/**
 * Prints a table with a title; the first column is left-aligned (names), the
 * others right-aligned (numbers). Notes follow the table, one per line.
 */
export function printTable(
  title: string,
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  notes: readonly string[] = [],
): void {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) =>
        column === 0 ? cell.padEnd(widths[column] ?? 0) : cell.padStart(widths[column] ?? 0),
      )
      .join("  ")
      .trimEnd();
  console.log(`\n${title}\n`);
  console.log(line(headers));
  console.log(line(widths.map((width) => "─".repeat(width))));
  for (const row of rows) console.log(line(row));
  if (notes.length > 0) console.log("");
  for (const note of notes) console.log(note);
}
