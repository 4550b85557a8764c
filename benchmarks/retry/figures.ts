/**
 * The retry benchmark's headline figures, from benchmarks/results/retry.json
 * (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt } from '../lib/report.ts';

interface RetryResults {
  storm: Array<{ scenario: string; 'load (x base)': number; 'extra load %': number }>;
  overhead: Array<{ candidate: string; 'overhead µs': number }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/retry/src', 'benchmarks/retry'];

export default function figures(results: RetryResults): Figures {
  const storm = (prefix: string): RetryResults['storm'][number] => {
    const row = results.storm.find((r) => r.scenario.startsWith(prefix));
    if (row === undefined) throw new Error(`retry results have no storm scenario "${prefix}…"`);
    return row;
  };
  const overhead = results.overhead.find((r) => r.candidate.startsWith('Ballast RetryPolicy.execute (defaults'));
  if (overhead === undefined) throw new Error('retry results have no overhead row for RetryPolicy.execute at its defaults');
  return {
    summary: summaryRow(
      'Retry storm against a dead upstream',
      `no budget: ${fmt(storm('retries, no budget')['load (x base)'], 2)}× load; default ratio budget: +${fmt(storm('retries, ratioBudget()')['extra load %'], 2)}%; ${fmt(overhead['overhead µs'], 2)} µs per first-attempt success at the defaults`,
      'npm run bench:retry',
    ),
  };
}
