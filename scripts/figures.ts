/**
 * README figures, traced to results files (see benchmarks/lib/figures.ts and CONTRIBUTING.md).
 *
 *   node scripts/figures.ts           check: fails when a `<!-- figures:… -->` block differs
 *                                     from what the latest benchmarks/results/<name>.json gives
 *   node scripts/figures.ts --write   fills every block from the latest results
 *
 * The check also warns (without failing) when the code a results file measures changed in a
 * commit after the results file's last commit: re-run that benchmark before quoting it.
 */
import { join } from 'node:path';
import { blocks, lastChange, loadFigures, writeFigures } from '../benchmarks/lib/figures.ts';
import { repoRoot } from './lib/workspaces.ts';

if (process.argv.includes('--write')) {
  const changed = await writeFigures();
  console.log(changed.length > 0 ? `figures written into ${changed.join(', ')}` : 'every figures block already matches its results');
  process.exit(0);
}

const all = await blocks();
let failures = 0;
for (const block of all) {
  const name = `${block.file}: figures:${block.source}${block.fragment ? `:${block.fragment}` : ''}`;
  if (block.error !== undefined) {
    failures++;
    console.error(`✗ ${name}: ${block.error}`);
  } else if (block.expected !== block.current) {
    failures++;
    const want = block.expected!.split('\n');
    const have = block.current.split('\n');
    const line = want.findIndex((l, i) => l !== have[i]);
    console.error(
      `✗ ${name} differs from the latest results (run \`npm run figures\`, or the benchmark):\n` +
        `    README line ${line + 1}: ${have[line] ?? '(missing)'}\n    results give: ${want[line] ?? '(nothing)'}`,
    );
  }
}

// Results older than the code they measure: a warning, since benchmarks are re-run by hand.
const sources = new Set(all.filter((b) => b.source !== 'summary').map((b) => b.source));
if (all.some((b) => b.source === 'summary')) for (const name of (await import('../benchmarks/lib/figures.ts')).SUMMARY) sources.add(name);
for (const name of sources) {
  try {
    const { module, resultsPath } = await loadFigures(name);
    const measuredAt = lastChange(resultsPath);
    for (const path of module.measures ?? []) {
      const changedAt = lastChange(join(repoRoot, path));
      if (measuredAt !== undefined && changedAt !== undefined && changedAt > measuredAt) {
        console.warn(`! benchmarks/results/${name}.json predates the last change to ${path}: re-run its benchmark before quoting it`);
      }
    }
  } catch {
    // reported above
  }
}

if (failures > 0) {
  console.error(`\n${failures} figures block(s) do not match their results files.`);
  process.exit(1);
}
console.log(`figures: ${all.length} README blocks match their results files.`);
