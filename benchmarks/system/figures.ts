/**
 * The reference system benchmark's headline figures, from benchmarks/results/system.json
 * (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { median } from '../lib/measure.ts';
import { fmt } from '../lib/report.ts';

interface Round {
  perCpuSecond: number;
}
interface SystemResults {
  input: { bytes: number; query: string };
  results: { direct: Round[]; plain: Round[]; tuned: Round[] };
  latency: Array<{ load: string; 'p99 ms': number; 'shed %': number }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['apps', 'benchmarks/system'];

export default function figures(results: SystemResults): Figures {
  // Per round, the system's requests per CPU-second over sharp's measured in the same round.
  const ratio = (path: Round[]): string =>
    `${fmt(median(path.map((r, i) => r.perCpuSecond / (results.results.direct[i]?.perCpuSecond ?? Number.NaN))), 2)}×`;
  const at80 = results.latency.find((l) => l.load === '80%');
  if (at80 === undefined) throw new Error('system results have no 80% load level');
  const width = /width=(\d+)/.exec(results.input.query)?.[1] ?? '?';
  return {
    summary: summaryRow(
      `Reference system, ${fmt(Math.round(results.input.bytes / 1024))} KB JPEG → ${width} px`,
      `${ratio(results.results.tuned)} the throughput per core of sharp called directly with a 128 MB initial old space, as \`npm start\` runs it (${ratio(results.results.plain)} with Node's default heap); p99 ${fmt(Math.round(at80['p99 ms']))} ms at 80% of capacity (${fmt(at80['shed %'], 2)}% shed), the excess shed above it`,
      'npm run bench:system',
    ),
  };
}
