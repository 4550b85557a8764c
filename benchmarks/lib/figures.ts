/**
 * Figures a README quotes, traced to the results file that holds them.
 *
 * A benchmark `benchmarks/<name>/run.ts` writes `benchmarks/results/<name>.json`; its
 * `benchmarks/<name>/figures.ts` turns that JSON into named Markdown fragments. A README
 * quotes a fragment between markers, which `npm run figures` fills and CI checks
 * (`npm run check:figures` fails when a block differs from what the latest results file
 * gives):
 *
 * ```md
 * <!-- figures:partitioning:tables -->
 * (generated: do not edit)
 * <!-- /figures -->
 * ```
 *
 * The root README's benchmark table is the block `<!-- figures:summary -->`: one row from
 * each benchmark's `summary` fragment, in the order of {@link SUMMARY}.
 * See CONTRIBUTING.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fmt, resultsDir } from './report.ts';

/** Markdown fragments, by name, computed from one results file. */
export type Figures = Record<string, string>;

/** What a `benchmarks/<name>/figures.ts` exports. */
export interface FiguresModule {
  /** Computes the fragments from the parsed `benchmarks/results/<name>.json`. */
  default: (results: never) => Figures;
  /**
   * Paths (relative to the repository root) of the code the results measure: the check
   * warns when one changed after the results file was last written.
   */
  measures?: readonly string[];
}

/** The root README's benchmark table: each benchmark's `summary` row, in this order. */
export const SUMMARY: readonly string[] = [
  'balancing',
  'load-balancer',
  'partitioning',
  'circuit-breaker',
  'retry',
  'backpressure',
  'composed',
  'failure-detector',
  'system',
  'degradation',
  'observability',
  'identity',
  'billing',
  'chaos',
  'size',
];

/** The repository root. */
export const repoRoot: string = join(resultsDir, '..', '..');

/** One row of the root README's benchmark table. */
export function summaryRow(what: string, figure: string, command: string): string {
  return `| ${what} | ${figure} | \`${command}\` |`;
}

/** `36.4 M/s`-style rate: millions with three significant digits. */
export function perSecond(value: number): string {
  if (value >= 1e6) return `${fmt(value / 1e6)} M/s`;
  if (value >= 1e3) return `${fmt(value / 1e3)} k/s`;
  return `${fmt(value)}/s`;
}

/** A benchmark's figures module and its latest results, or the reason there are none. */
export async function loadFigures(name: string): Promise<{ figures: Figures; module: FiguresModule; resultsPath: string }> {
  const modulePath = join(repoRoot, 'benchmarks', name, 'figures.ts');
  const resultsPath = join(resultsDir, `${name}.json`);
  if (!existsSync(modulePath)) throw new Error(`no benchmarks/${name}/figures.ts to compute figures from`);
  if (!existsSync(resultsPath)) throw new Error(`no results file benchmarks/results/${name}.json: run its benchmark`);
  const module = (await import(pathToFileURL(modulePath).href)) as FiguresModule;
  const figures = module.default(JSON.parse(readFileSync(resultsPath, 'utf8')) as never);
  return { figures, module, resultsPath };
}

const BLOCK = /<!-- figures:([a-z0-9-]+)(?::([a-z0-9-]+))? -->\n([\s\S]*?)<!-- \/figures -->/g;

/** A quoted block: where it is and what it should contain. */
export interface Block {
  file: string;
  source: string;
  fragment: string | undefined;
  current: string;
  expected: string | undefined;
  error?: string;
}

/** Every figures block of the repository's tracked Markdown files, with what the latest results give. */
export async function blocks(files: readonly string[] = markdownFiles()): Promise<Block[]> {
  const cache = new Map<string, Promise<Figures>>();
  const figuresOf = (name: string): Promise<Figures> => {
    let entry = cache.get(name);
    if (entry === undefined) {
      entry = loadFigures(name).then((loaded) => loaded.figures);
      cache.set(name, entry);
    }
    return entry;
  };
  const out: Block[] = [];
  for (const file of files) {
    const text = readFileSync(join(repoRoot, file), 'utf8');
    for (const match of text.matchAll(BLOCK)) {
      const [, source, fragment, current] = match as unknown as [string, string, string | undefined, string];
      const block: Block = { file, source, fragment, current: current.trimEnd(), expected: undefined };
      try {
        block.expected = source === 'summary' ? await summaryTable(figuresOf) : await fragmentOf(figuresOf, source, fragment);
      } catch (error) {
        block.error = (error as Error).message;
      }
      out.push(block);
    }
  }
  return out;
}

async function fragmentOf(figuresOf: (name: string) => Promise<Figures>, source: string, fragment: string | undefined): Promise<string> {
  if (fragment === undefined) throw new Error(`block figures:${source} names no fragment (figures:${source}:<fragment>)`);
  const figures = await figuresOf(source);
  const text = figures[fragment];
  if (text === undefined) {
    throw new Error(`benchmarks/${source}/figures.ts gives no fragment "${fragment}" (it has: ${Object.keys(figures).join(', ')})`);
  }
  return text.trimEnd();
}

async function summaryTable(figuresOf: (name: string) => Promise<Figures>): Promise<string> {
  const rows: string[] = [];
  for (const name of SUMMARY) rows.push(await fragmentOf(figuresOf, name, 'summary'));
  return ['| what | figure | command |', '| --- | --- | --- |', ...rows].join('\n');
}

/** Tracked Markdown files, relative to the root (results reports excluded: they are what is quoted). */
export function markdownFiles(): string[] {
  return execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: repoRoot, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '' && !f.startsWith('benchmarks/results/') && !f.includes('node_modules/') && !f.startsWith('.changeset/'));
}

/** Rewrites every block of `files` (all tracked Markdown by default) from the latest results; returns the files changed. */
export async function writeFigures(files?: readonly string[], only?: string): Promise<string[]> {
  const all = await blocks(files);
  const errors = all.filter((b) => b.error !== undefined && (only === undefined || b.source === only || b.source === 'summary'));
  if (errors.length > 0) throw new Error(errors.map((b) => `${b.file}: ${b.error}`).join('\n'));
  const changed = new Set<string>();
  for (const file of new Set(all.map((b) => b.file))) {
    const path = join(repoRoot, file);
    const text = readFileSync(path, 'utf8');
    const queue = all.filter((b) => b.file === file);
    let i = 0;
    const next = text.replace(BLOCK, (whole) => {
      const block = queue[i++]!;
      if (block.expected === undefined || (only !== undefined && block.source !== only && block.source !== 'summary')) return whole;
      return `<!-- figures:${block.source}${block.fragment ? `:${block.fragment}` : ''} -->\n${block.expected}\n<!-- /figures -->`;
    });
    if (next !== text) {
      writeFileSync(path, next);
      changed.add(file);
    }
  }
  return [...changed];
}

/**
 * For a benchmark's run.ts, after it wrote its results: fills the README blocks that
 * quote `name` (and the root summary) and says which files changed.
 */
export async function publishFigures(name: string): Promise<void> {
  const changed = await writeFigures(undefined, name);
  console.log(changed.length > 0 ? `updated figures in ${changed.join(', ')}` : 'README figures already match these results');
}

/** The commit time of the last change to `path` (ms), or the file's own time when uncommitted. */
export function lastChange(path: string): number | undefined {
  // Tests and test helpers do not change what a benchmark measures.
  const pathspec = [path, ':(exclude,glob)**/*.test.ts', ':(exclude,glob)**/*.test-d.ts', ':(exclude,glob)**/testing/**'];
  const out = execFileSync('git', ['log', '-1', '--format=%ct', '--', ...pathspec], { cwd: repoRoot, encoding: 'utf8' }).trim();
  return out === '' ? undefined : Number(out) * 1000;
}

/** Paths relative to the root, for messages. */
export const rel = (path: string): string => relative(repoRoot, path);
