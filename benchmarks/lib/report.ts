/**
 * Output for benchmarks: aligned console tables, Markdown tables for READMEs and
 * reports, and JSON results under `benchmarks/results/`.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus as listCpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Row = Record<string, string | number | boolean | null | undefined>;

/** The results directory, `benchmarks/results`. */
export const resultsDir: string = join(dirname(fileURLToPath(import.meta.url)), '..', 'results');

/** Formats a number for a table: integers with thousands separators, others to `digits` significant places. */
export function fmt(value: number | null | undefined, digits = 3): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (!Number.isFinite(value)) return value > 0 ? '∞' : '-∞';
  if (Number.isInteger(value) && Math.abs(value) >= 1000) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 1000) return Math.round(value).toLocaleString('en-US');
  return Number(value.toPrecision(digits)).toString();
}

/** A Markdown table of `rows`, columns in the order of `columns` (default: keys of the first row). */
export function markdownTable(rows: Row[], columns?: string[]): string {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const cell = (v: Row[string]): string => (typeof v === 'number' ? fmt(v) : v === undefined || v === null ? '—' : String(v));
  const lines = [`| ${cols.join(' | ')} |`, `| ${cols.map((c) => (typeof rows[0]?.[c] === 'number' ? '---:' : '---')).join(' | ')} |`];
  for (const row of rows) lines.push(`| ${cols.map((c) => cell(row[c])).join(' | ')} |`);
  return lines.join('\n');
}

/** Prints `rows` as an aligned table on stdout. */
export function printTable(title: string, rows: Row[], columns?: string[]): void {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  const text = rows.map((row) => cols.map((c) => (typeof row[c] === 'number' ? fmt(row[c] as number) : String(row[c] ?? '—'))));
  const widths = cols.map((c, i) => Math.max(c.length, ...text.map((r) => (r[i] as string).length)));
  const numeric = cols.map((c) => typeof rows[0]?.[c] === 'number');
  const line = (cells: string[]): string =>
    cells.map((v, i) => (numeric[i] ? v.padStart(widths[i] as number) : v.padEnd(widths[i] as number))).join('  ');
  console.log(`\n${title}`);
  console.log(line(cols));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of text) console.log(line(r));
}

/** Writes `benchmarks/results/<name>` (JSON when `data` is not a string). Returns the path. */
export function writeResult(name: string, data: unknown): string {
  const path = join(resultsDir, name);
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, typeof data === 'string' ? data : `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

/** A one-line description of the machine, for result files. */
export function machine(): { node: string; cpus: number; cpuModel: string; date: string } {
  const cpus = listCpus();
  return { node: process.version, cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', date: new Date().toISOString() };
}
