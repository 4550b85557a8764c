/**
 * The composed-stack benchmark's figures, from benchmarks/results/composed.json (see
 * benchmarks/lib/figures.ts): the table the common README quotes, and the root summary row.
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable, type Row } from '../lib/report.ts';

interface ComposedResults {
  machine: { loadAverage: number[]; loadAverageAtEnd?: number[] };
  iterations: number;
  rounds: number;
  rows: Array<Row & { stack: string; 'overhead ns/call': number; 'bytes/call over bare': number }>;
  goals: string[];
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = [
  'packages/common/src',
  'packages/retry/src',
  'packages/circuit-breaker/src',
  'packages/backpressure/src',
  'benchmarks/composed',
];

export default function figures(results: ComposedResults): Figures {
  const row = (prefix: string): ComposedResults['rows'][number] => {
    const found = results.rows.find((r) => r.stack.startsWith(prefix));
    if (found === undefined) throw new Error(`composed results have no row "${prefix}…"`);
    return found;
  };
  const ours = row('Ballast wrap(retry');
  const cockatiel = Math.min(row('cockatiel wrap(retry')['overhead ns/call'], row('cockatiel wrap(...)')['overhead ns/call']);
  const before = results.rows.find((r) => r.stack.startsWith('Ballast before'));
  const { loadAverage, loadAverageAtEnd } = results.machine;
  const table = markdownTable(
    results.rows.map((r) => ({
      stack: r.stack,
      'overhead ns/call': r['overhead ns/call'],
      'bytes/call over bare': r['bytes/call over bare'],
    })),
  );
  return {
    table: [
      table,
      '',
      ...results.goals.map((g) => `- ${g}`),
      '',
      `Each contender in a process of its own, median of ${results.rounds} interleaved rounds of ${fmt(results.iterations)} calls; CPU time over a bare call; load average ${loadAverage.join(' ')} at the start${loadAverageAtEnd ? ` and ${loadAverageAtEnd.join(' ')} at the end` : ''}.`,
    ].join('\n'),
    summary: summaryRow(
      'Composed retry ∘ breaker ∘ limiter ∘ timeout, per successful call',
      `Ballast ${fmt(ours['overhead ns/call'])} ns and ${fmt(ours['bytes/call over bare'])} bytes over a bare call; cockatiel's equivalent \`wrap\` ${fmt(cockatiel)} ns${before ? `; Ballast before the policy contract ${fmt(before['overhead ns/call'])} ns` : ''}`,
      'npm run bench:composed',
    ),
  };
}
