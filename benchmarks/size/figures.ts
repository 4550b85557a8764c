/**
 * Package sizes as the READMEs quote them, from benchmarks/results/size.json
 * (see benchmarks/lib/figures.ts): one fragment per package (named after its directory
 * under packages/), the full report, and the root summary row.
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { markdownTable } from '../lib/report.ts';
import type { PackageSize, SizeResults } from './measure.ts';

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages'];

/** Bytes as `4.2 kB` (1 kB = 1,000 bytes). */
export const kB = (bytes: number): string => `${(bytes / 1000).toFixed(1)} kB`;

function table(pkg: PackageSize): string {
  return markdownTable(
    pkg.entries.map((e) => ({
      import: `\`${e.entry === '.' ? pkg.name : `${pkg.name}/${e.entry.slice(2)}`}\``,
      'min + gzip, with dependencies': kB(e.gzip),
      'min + gzip, own code': kB(e.ownGzip),
      minified: kB(e.minified),
    })),
  );
}

export default function figures(results: SizeResults): Figures {
  const note = `Measured by \`${results.command}\` (esbuild ${results.esbuild}, minified, gzip level 9; peer dependencies and Node built-ins external). "With dependencies" is what a bundle grows by; "own code" leaves every dependency out. CI keeps each entry under its budget (\`benchmarks/size/budgets.json\`).`;
  const fragments: Figures = {};
  for (const pkg of results.packages) fragments[pkg.dir] = `${table(pkg)}\n\n${note}`;
  const main = (pkg: PackageSize): string => kB(pkg.entries.find((e) => e.entry === '.')?.gzip ?? Number.NaN);
  fragments.summary = summaryRow(
    'Package size, main entry, min + gzip with dependencies',
    results.packages.map((pkg) => `${pkg.dir} ${main(pkg)}`).join(', '),
    results.command,
  );
  fragments.report = [note, '', ...results.packages.flatMap((pkg) => [`### ${pkg.name}`, '', table(pkg), ''])].join('\n');
  return fragments;
}
