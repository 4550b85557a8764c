/**
 * The circuit-breaker benchmark's headline figures, from
 * benchmarks/results/circuit-breaker.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt } from '../lib/report.ts';

interface CircuitBreakerResults {
  results: Array<{ [column: string]: number }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/circuit-breaker/src', 'benchmarks/circuit-breaker'];

export default function figures(results: CircuitBreakerResults): Figures {
  const largest = results.results.reduce((a, b) => ((a['calls in window'] ?? 0) > (b['calls in window'] ?? 0) ? a : b));
  const us = (column: string): string => {
    const value = largest[column];
    if (value === undefined) throw new Error(`circuit-breaker results have no column "${column}"`);
    return `${fmt(value, 2)} µs`;
  };
  return {
    summary: summaryRow(
      `Circuit breaker overhead, window of ${fmt(largest['calls in window'])} calls`,
      `Ballast at its defaults ${us('Ballast ok µs')} ok / ${us('Ballast fail µs')} failed; opossum at its defaults ${us('opossum (defaults) fail µs')} per failed call`,
      'npm run bench:circuit-breaker',
    ),
  };
}
