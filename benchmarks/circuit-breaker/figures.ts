/**
 * The circuit-breaker benchmark's headline figures, from
 * benchmarks/results/circuit-breaker.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable } from '../lib/report.ts';

type PerCallRow = { breaker: string; 'overhead µs': number; 'bytes/call over bare': number };

interface CircuitBreakerResults {
  machine: { loadAverage: number[]; loadAverageAtEnd?: number[] };
  results: Array<{ [column: string]: number }>;
  rejections: Array<{ breaker: string; 'rejection µs': number }>;
  heap: Array<{ breaker: string; 'heap for 100k calls in window (KB)': number }>;
  success: PerCallRow[];
  failure?: PerCallRow[];
  goals: { [goal: string]: number | boolean | null };
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
  const perCall = (rows: PerCallRow[]): string =>
    markdownTable(
      rows.map((r) => ({ breaker: r.breaker, 'overhead µs': r['overhead µs'], 'bytes/call over bare': r['bytes/call over bare'] })),
    );
  const row = (rows: PerCallRow[] | undefined, name: string): PerCallRow => {
    const found = rows?.find((r) => r.breaker === name);
    if (found === undefined) throw new Error(`circuit-breaker results have no per-call row "${name}"`);
    return found;
  };
  const micro = (value: number): string => `${fmt(value)} µs`;
  const noTimeout = row(results.success, 'Ballast, no timeout')['overhead µs'];
  const peer = row(results.success, 'cockatiel')['overhead µs'];
  // What cockatiel's breaker does per call: no timeout, no clock reading (older results have no such row).
  const untimed = results.success.find((r) => r.breaker === 'Ballast, no timeout, recordLatency: false')?.['overhead µs'];
  const failed = results.failure?.find((r) => r.breaker === 'failed call: Ballast');
  const failedToday = results.failure?.find((r) => r.breaker === 'failed call: Ballast before the hot-path work');
  const { loadAverage, loadAverageAtEnd } = results.machine;
  const load = `load average ${loadAverage.join(' ')} at the start${loadAverageAtEnd ? ` and ${loadAverageAtEnd.join(' ')} at the end` : ''} of the run`;
  return {
    'per-call': [
      '**Successful call**, CPU time over a bare call, and heap bytes allocated per call:',
      '',
      perCall(results.success),
      '',
      ...(results.failure
        ? [
            '**Failed call** (no breaker opens), CPU time over a bare failed call, and heap bytes allocated per call:',
            '',
            perCall(results.failure),
            '',
          ]
        : []),
      ...(untimed === undefined
        ? []
        : [
            `- successful call doing what cockatiel's breaker does (no timeout, no latency histogram: no clock reading): ${micro(untimed)} against cockatiel's ${micro(peer)} (×${fmt(untimed / peer)}; goal ≤ 1 ${untimed <= peer ? 'met' : '**not met**'})`,
          ]),
      `- successful call without a timeout, latency histogram kept (two clock readings): ${micro(noTimeout)} against cockatiel's ${micro(peer)} (×${fmt(noTimeout / peer)})`,
      ...(failed && failedToday
        ? [
            `- failed call: ${micro(failed['overhead µs'])} against ${micro(failedToday['overhead µs'])} before the hot-path work (×${fmt(failed['overhead µs'] / failedToday['overhead µs'])}; goal ≤ 1 ${failed['overhead µs'] <= failedToday['overhead µs'] ? 'met' : '**not met**'})`,
          ]
        : []),
      '',
      `Each contender in a process of its own, in interleaved rounds; ${load}.`,
    ].join('\n'),
    windows: markdownTable(results.results),
    'open-and-heap': [markdownTable(results.rejections), '', markdownTable(results.heap)].join('\n'),
    summary: summaryRow(
      `Circuit breaker overhead, window of ${fmt(largest['calls in window'])} calls`,
      `Ballast at its defaults ${us('Ballast ok µs')} ok / ${us('Ballast fail µs')} failed; opossum at its defaults ${us('opossum (defaults) fail µs')} per failed call`,
      'npm run bench:circuit-breaker',
    ),
  };
}
