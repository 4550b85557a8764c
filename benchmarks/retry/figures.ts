/**
 * The retry benchmark's headline figures, from benchmarks/results/retry.json
 * (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable, type Row } from '../lib/report.ts';

interface RetryResults {
  machine: { loadAverage: number[]; loadAverageAtEnd?: number[] };
  baseRate: number;
  durationMs: number;
  storm: Array<Row & { scenario: string; 'load (x base)': number; 'extra load %': number }>;
  hedging: Row[];
  overhead: Array<{ candidate: string; 'overhead µs': number; 'bytes/call over raw': number }>;
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
  const row = (prefix: string): RetryResults['overhead'][number] => {
    const found = results.overhead.find((r) => r.candidate.startsWith(prefix));
    if (found === undefined) throw new Error(`retry results have no overhead row "${prefix}…"`);
    return found;
  };
  const peer = Math.min(row('p-retry')['overhead µs'], row('cockatiel')['overhead µs']);
  const ours = overhead['overhead µs'];
  const failNow = results.overhead.find((r) => r.candidate.startsWith('failure path: Ballast'));
  const failToday = results.overhead.find((r) => r.candidate.startsWith('failure path: the same before the hot-path'));
  const { loadAverage, loadAverageAtEnd } = results.machine;
  const us = (value: number): string => `${fmt(value)} µs`;
  return {
    storm: [
      `${fmt(results.baseRate)} calls/s for ${fmt(results.durationMs / 1000)} s against an upstream failing every request, \`maxAttempts: 3\`, steady state from 2 s:`,
      '',
      markdownTable(results.storm),
    ].join('\n'),
    hedging: markdownTable(results.hedging),
    overhead: [
      markdownTable(
        results.overhead.map((r) => ({
          candidate: r.candidate,
          'overhead µs': r['overhead µs'],
          'bytes/call over raw': r['bytes/call over raw'],
        })),
      ),
      '',
      `- first-attempt success at the defaults: ${us(ours)} against ${us(peer)} for the fastest peer (×${fmt(ours / peer)}; goal ≤ 1 ${ours <= peer ? 'met' : '**not met**'})`,
      ...(failNow && failToday
        ? [
            `- an error that is not retried (through p-retry): ${us(failNow['overhead µs'])} against ${us(failToday['overhead µs'])} before the hot-path work (×${fmt(failNow['overhead µs'] / failToday['overhead µs'])}; goal ≤ 1 ${failNow['overhead µs'] <= failToday['overhead µs'] ? 'met' : '**not met**'})`,
          ]
        : []),
      '',
      `Each contender in a process of its own; CPU time per call over the raw operation; load average ${loadAverage.join(' ')} at the start${loadAverageAtEnd ? ` and ${loadAverageAtEnd.join(' ')} at the end` : ''} of the run.`,
    ].join('\n'),
    summary: summaryRow(
      'Retry storm against a dead upstream',
      `no budget: ${fmt(storm('retries, no budget')['load (x base)'], 2)}× load; default ratio budget: +${fmt(storm('retries, ratioBudget()')['extra load %'], 2)}%; ${fmt(ours, 2)} µs per first-attempt success at the defaults (fastest peer ${fmt(peer, 2)} µs)`,
      'npm run bench:retry',
    ),
  };
}
