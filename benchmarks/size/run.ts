/**
 * Package sizes: every public entry of every published package, minified and gzipped by
 * esbuild (see measure.ts).
 *
 *   npm run bench:size
 *
 * Writes benchmarks/results/size.json and size.md, then fills the README blocks that
 * quote them (`<!-- figures:size:<package> -->` in each package README, and the root
 * summary). CI checks the sizes against benchmarks/size/budgets.json (scripts/check-size.ts).
 */
import { publishFigures } from '../lib/figures.ts';
import { writeResult } from '../lib/report.ts';
import figures from './figures.ts';
import { measureSizes } from './measure.ts';

const results = await measureSizes();
writeResult('size.json', results);
writeResult('size.md', `## Package sizes\n\n${figures(results).report}\n`);
console.log(figures(results).report);
await publishFigures('size');
