/**
 * The failure-detector benchmark's headline figures, from
 * benchmarks/results/failure-detector.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt } from '../lib/report.ts';

interface FailureDetectorResults {
  goal: Array<{ network: string; settings: string; [column: string]: string | number }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/failure-detector/src', 'benchmarks/failure-detector'];

export default function figures(results: FailureDetectorResults): Figures {
  const row = results.goal.find((r) => r.network === 'uniform' && r.detector === 'phi accrual');
  if (row === undefined) throw new Error('failure-detector results have no phi accrual row on the uniform network');
  const s = (column: string): string => fmt(Number(row[column]) / 1000, 2);
  return {
    summary: summaryRow(
      'Failure detection, 1 s heartbeats, 20% jitter, 1% loss',
      `phi accrual (${row.settings}, tuned): crash detected in ${s('T_D mean (ms)')} s on average (max ${s('T_D max (ms)')} s) with ${fmt(Number(row['false susp. / node-day']), 2)} false suspicions per node-day`,
      'npm run bench:failure-detector',
    ),
  };
}
