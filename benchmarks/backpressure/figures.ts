/**
 * The backpressure benchmark's headline figures, from benchmarks/results/backpressure.json
 * (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable } from '../lib/report.ts';

interface StatusLatency {
  count: number;
  latency: { p99: number };
}
interface BackpressureResults {
  machine: { loadavg: number[]; loadAverageAtEnd?: number[] };
  limiter?: Array<{ limiter: string; 'overhead ns/call': number; 'bytes/call over bare': number }>;
  limiterGoals?: string[];
  admission: { decisions: Array<{ name: string; nsPerOp: number }>; bottleneck: { startDelayMs: number } };
  overload: Array<{ label: string; result: { byStatus: { [status: string]: StatusLatency } } }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/backpressure/src', 'benchmarks/backpressure'];

export default function figures(results: BackpressureResults): Figures {
  const decision = (prefix: string): string => {
    const row = results.admission.decisions.find((d) => d.name.startsWith(prefix));
    if (row === undefined) throw new Error(`backpressure results have no admission decision "${prefix}…"`);
    return `${fmt(row.nsPerOp / 1000, 2)} µs`;
  };
  const run = (label: string): BackpressureResults['overload'][number] => {
    const row = results.overload.find((o) => o.label === label);
    if (row === undefined) throw new Error(`backpressure results have no overload run "${label}"`);
    return row;
  };
  const p99 = (label: string, status = '200'): number => {
    const s = run(label).result.byStatus[status];
    if (s === undefined) throw new Error(`backpressure overload run "${label}" has no ${status} answers`);
    return s.latency.p99;
  };
  const unloaded = p99('unloaded (0.3 × C), no limiter');
  const ratio = (label: string): string => `${fmt(p99(label) / unloaded, 3)}×`;
  const noLimit = p99('3 × C, no limiter');
  const { loadavg, loadAverageAtEnd } = results.machine;
  return {
    limiter: [
      markdownTable(
        (results.limiter ?? []).map((r) => ({
          limiter: r.limiter,
          'overhead ns/call': r['overhead ns/call'],
          'bytes/call over bare': r['bytes/call over bare'],
        })),
      ),
      '',
      ...(results.limiterGoals ?? []).map((g) => `- ${g}`),
      '',
      `Each contender in a process of its own, in interleaved rounds; CPU time per call over a bare call; load average ${loadavg.join(' ')} at the start${loadAverageAtEnd ? ` and ${loadAverageAtEnd.join(' ')} at the end` : ''} of the run.`,
    ].join('\n'),
    summary: [
      summaryRow(
        'Admission decision',
        `concurrency limiter ${decision('ConcurrencyLimiter tryAcquire + release (fixed limit)')}, token bucket ${decision('TokenBucket tryTake')}; bottleneck ≈ ${fmt(results.admission.bottleneck.startDelayMs, 2)} ms per job`,
        'npm run bench:backpressure',
      ),
      summaryRow(
        'Overload at 3× capacity',
        `admitted p99 over the unloaded p99: Vegas at its defaults ${ratio('3 × C, Ballast Vegas (defaults)')}, Gradient2 at its defaults ${ratio('3 × C, Ballast Gradient2 (defaults)')}, Vegas hand-tuned (alpha 1, beta 2, threshold 0) ${ratio('3 × C, Ballast Vegas (alpha 1, beta 2, threshold 0)')}; excess answered 503 in ${fmt(p99('3 × C, Ballast Vegas (defaults)', '503'), 2)} ms (p99, Vegas defaults); no limit: p99 ${fmt(noLimit / 1000, 2)} s and growing`,
        'npm run bench:backpressure',
      ),
    ].join('\n'),
  };
}
