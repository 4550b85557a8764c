/**
 * The load-balancer micro-benchmark's headline figures, from
 * benchmarks/results/load-balancer.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt } from '../lib/report.ts';

interface LoadBalancerResults {
  results: Array<{ strategy: string; idle: { cpuNs: number } }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/load-balancer/src', 'benchmarks/load-balancer'];

export default function figures(results: LoadBalancerResults): Figures {
  const ns = (strategy: string): string => {
    const r = results.results.find((row) => row.strategy === strategy);
    if (r === undefined) throw new Error(`load-balancer results have no ${strategy}`);
    return `${fmt(Math.round(r.idle.cpuNs))} ns`;
  };
  return {
    summary: summaryRow(
      '`pick()` + `done()` at 100 endpoints',
      `round robin ${ns('round-robin')}, P2C ${ns('p2c')}, least connections ${ns('least-connections')}, peak-EWMA ${ns('peak-ewma')}`,
      'npm run bench:load-balancer',
    ),
  };
}
