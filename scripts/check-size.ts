/**
 * Size budgets: measures every public entry of every published package (minified +
 * gzipped with esbuild, dependencies bundled, peers external; benchmarks/size/measure.ts)
 * and fails when one exceeds its budget in benchmarks/size/budgets.json, or has none.
 * Warns when the README figures (benchmarks/results/size.json) are more than 10% off the
 * fresh measurement: run `npm run bench:size` to refresh them.
 *
 * Usage: node --conditions=@ballast/source scripts/check-size.ts
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { kB } from '../benchmarks/size/figures.ts';
import { measureSizes, type SizeResults } from '../benchmarks/size/measure.ts';
import { repoRoot } from './lib/workspaces.ts';

const budgets = JSON.parse(readFileSync(join(repoRoot, 'benchmarks/size/budgets.json'), 'utf8')) as Record<
  string,
  Record<string, number> | string
>;
const resultsPath = join(repoRoot, 'benchmarks/results/size.json');
const published = existsSync(resultsPath) ? (JSON.parse(readFileSync(resultsPath, 'utf8')) as SizeResults) : undefined;
const fresh = await measureSizes();

const problems: string[] = [];
const seen = new Set<string>();
for (const pkg of fresh.packages) {
  for (const e of pkg.entries) {
    const id = `${pkg.name} ${e.entry}`;
    seen.add(id);
    const budget = (budgets[pkg.name] as Record<string, number> | undefined)?.[e.entry];
    const quoted = published?.packages.find((p) => p.name === pkg.name)?.entries.find((q) => q.entry === e.entry)?.gzip;
    const line = `${id.padEnd(38)} ${kB(e.gzip).padStart(9)} of ${budget === undefined ? 'no budget' : kB(budget)}`;
    console.log(line);
    if (budget === undefined)
      problems.push(`${id}: no budget; add "${e.entry}": <bytes> under "${pkg.name}" in benchmarks/size/budgets.json`);
    else if (e.gzip > budget) problems.push(`${id}: ${e.gzip} bytes min + gzip, over its budget of ${budget}`);
    if (quoted === undefined) console.warn(`! ${id}: not in benchmarks/results/size.json; run \`npm run bench:size\``);
    else if (Math.abs(quoted - e.gzip) / e.gzip > 0.1) {
      console.warn(`! ${id}: README figure ${kB(quoted)} is over 10% off today's ${kB(e.gzip)}; run \`npm run bench:size\``);
    }
  }
}
for (const [name, entries] of Object.entries(budgets)) {
  if (typeof entries === 'string') continue;
  for (const entry of Object.keys(entries)) {
    if (!seen.has(`${name} ${entry}`)) problems.push(`${name} ${entry}: budgeted in benchmarks/size/budgets.json but not a public entry`);
  }
}

if (problems.length > 0) {
  for (const p of problems) console.error(`✗ ${p}`);
  process.exit(1);
}
console.log(`size: every public entry is within its budget.`);
