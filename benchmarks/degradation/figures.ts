/**
 * The degradation benchmark's figures against its goals, from
 * benchmarks/results/degradation.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable } from '../lib/report.ts';

interface Run {
  load: string;
  contender: string;
  requests: number;
  yield: number;
  'mean harvest': number;
  'admitted p50 ms': number;
  'admitted p99 ms': number;
  '503 + Retry-After': number;
  '504': number;
  timeouts: number;
  'late (> deadline + 100 ms)': number;
  other: number;
}
interface Step {
  step: string;
  'θ settled at': number;
  'settled after s': number;
  '± over the last 8 s': number;
}
interface DegradationResults {
  machine: { cpus: number; cpuModel: string; node: string };
  /** Written since `-- --quick` runs were told apart; absent: a full run. */
  quick?: boolean;
  loadAverage: number[];
  request: { set: string; renditions: number; deadlineMs: number; inputBytes: number };
  capacity: { start: number; end: number };
  runs: Run[];
  /** How every request of each run was answered, by kind, and the renditions missing from its 200s by reason (written since they were classified). */
  answers?: Array<{ load: string; contender: string; answers: Record<string, number>; missing: Record<string, number> }>;
  steps: Step[];
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = [
  'packages/backpressure/src/brownout.ts',
  'apps/api/src/brownout.ts',
  'apps/api/src/renditions',
  'apps/api/src/admission.ts',
  'benchmarks/degradation',
];

/** The goals of `npm run bench:degradation`. */
const GOALS = {
  /** At 2× capacity, with brownout: yield at least, mean harvest at least, admitted p99 below (ms). */
  yieldAt2: 0.99,
  harvestAt2: 0.7,
  p99At2Ms: 500,
  /** After a step of load, θ within ±0.1 of where it ends in at most this many seconds … */
  settleS: 10,
  /** … and moving no more than this once settled. */
  band: 0.1,
};

const verdict = (met: boolean): string => (met ? 'met' : '**not met**');
const percent = (share: number): string => `${fmt(share * 100)}%`;

export default function figures(results: DegradationResults): Figures {
  const run = (load: string, brownout: boolean): Run => {
    const row = results.runs.find((r) => r.load === load && r.contender.startsWith(brownout ? 'brownout' : 'shed only'));
    if (row === undefined) throw new Error(`degradation results have no ${load} run ${brownout ? 'with brownout' : 'shedding only'}`);
    return row;
  };
  const b2 = run('2×', true);
  const s2 = run('2×', false);
  const b3 = run('3×', true);
  const s3 = run('3×', false);
  const settle = results.steps.map((s) => s['settled after s']);
  const spread = results.steps.map((s) => s['± over the last 8 s']);
  // Zero only when no answer was a 504, late, a timeout or off-contract (the counts may overlap).
  const notInTime = (r: Run): number => r['504'] + r.timeouts + r['late (> deadline + 100 ms)'] + r.other;
  const met = {
    at2: b2.yield >= GOALS.yieldAt2 && b2['mean harvest'] >= GOALS.harvestAt2 && b2['admitted p99 ms'] < GOALS.p99At2Ms,
    at3: notInTime(b3) === 0,
    settle: Math.max(...settle) <= GOALS.settleS && Math.max(...spread) <= GOALS.band,
  };
  const loads = results.loadAverage;
  const loadRange = `${fmt(Math.min(...loads))}–${fmt(Math.max(...loads))}`;
  const { deadlineMs } = results.request;
  const command = `npm run bench:degradation${results.quick ? ' -- --quick' : ''}`;

  const columns = [
    'load',
    'contender',
    'yield',
    'mean harvest',
    'admitted p50 / p99 ms',
    '503 + Retry-After',
    '504',
    'client timeouts',
    'answers > deadline + 100 ms',
  ];
  const runLines = markdownTable(
    results.runs.map((r) => ({
      load: r.load,
      contender: r.contender,
      yield: percent(r.yield),
      'mean harvest': r['mean harvest'],
      'admitted p50 / p99 ms': `${fmt(r['admitted p50 ms'])} / ${fmt(r['admitted p99 ms'])}`,
      '503 + Retry-After': percent(r['503 + Retry-After']),
      '504': r['504'],
      'client timeouts': r.timeouts,
      'answers > deadline + 100 ms': r['late (> deadline + 100 ms)'],
    })),
    columns,
  ).split('\n');
  // Every column after the first two holds a figure: right-aligned, percentages included.
  runLines[1] = `| ${columns.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`;
  const runs = runLines.join('\n');
  const list = (counts: Record<string, number>): string =>
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([kind, n]) => `${kind.replace(/^(\d{3}) (ERR_BALLAST_\w+)/, '$1 `$2`')}: ${n}`)
      .join(', ') || 'none';
  const answers = results.answers
    ? markdownTable(
        results.answers.map((a) => ({
          load: a.load,
          contender: a.contender,
          'answers other than 200 (status, code, `x-ballast-shed`)': list(
            Object.fromEntries(Object.entries(a.answers).filter(([kind]) => !kind.startsWith('200'))),
          ),
          'renditions missing from the 200s, by reason': list(a.missing),
        })),
      )
    : undefined;
  const steps = markdownTable(
    results.steps.map((s) => ({
      'step of load': s.step,
      'θ settled at': s['θ settled at'],
      [`settled after (θ within ±${GOALS.band} of where it ends)`]: `${fmt(s['settled after s'])} s`,
      '± over the last 8 s': s['± over the last 8 s'],
    })),
  );

  return {
    tables: [
      `The committed run of \`${command}\` (${results.machine.cpus} cores, ${results.machine.cpuModel}, Node ${results.machine.node.replace(/^v/, '')}, **1-minute load average ${loadRange}** during the run; capacity ${fmt(results.capacity.start)} full-quality sets/s at the start, ${fmt(results.capacity.end)} at the end):`,
      '',
      runs,
      '',
      ...(answers ? ['Every answer that was not a 200, and why renditions were missing from those that were:', '', answers, ''] : []),
      steps,
    ].join('\n'),
    goals: [
      `- **At 2× capacity, with brownout: yield ${percent(b2.yield)}, mean harvest ${fmt(b2['mean harvest'])}, admitted p99 ${fmt(b2['admitted p99 ms'])} ms** (goal yield ≥ ${percent(GOALS.yieldAt2)}, harvest ≥ ${GOALS.harvestAt2}, p99 < ${GOALS.p99At2Ms} ms: ${verdict(met.at2)}). Shedding only: yield ${percent(s2.yield)}, harvest ${fmt(s2['mean harvest'])}, p99 ${fmt(s2['admitted p99 ms'])} ms.`,
      `- **At 3×, every request answered within its ${deadlineMs} ms deadline** (degraded, partial or 503 + \`Retry-After\`): with brownout, of ${fmt(b3.requests)} requests, ${b3.timeouts} client timeouts, ${b3['504']} answered 504, ${b3['late (> deadline + 100 ms)']} later than the deadline + 100 ms, ${b3.other} other answers (${verdict(met.at3)}); yield ${percent(b3.yield)} at harvest ${fmt(b3['mean harvest'])} against ${percent(s3.yield)} shedding only.`,
      `- **The dimmer settles within ${GOALS.settleS} s after a step of load and moves no more than ±${GOALS.band} once settled**: it settled after ${fmt(Math.min(...settle))}–${fmt(Math.max(...settle))} s and moved up to ±${fmt(Math.max(...spread), 2)} (${verdict(met.settle)}).`,
    ].join('\n'),
    brief: `The committed run (${results.machine.cpus} shared cores, load average ${loadRange}): at 3× the brownout system answered ${percent(b3.yield)} of requests (harvest ${fmt(b3['mean harvest'], 2)}) against ${percent(s3.yield)} with shedding alone; at 2× ${percent(b2.yield)} (harvest ${fmt(b2['mean harvest'], 2)}; goal ≥ ${percent(GOALS.yieldAt2)}: ${verdict(b2.yield >= GOALS.yieldAt2)}); θ settled ${fmt(Math.min(...settle), 2)}–${fmt(Math.max(...settle), 2)} s after a step and moved up to ±${fmt(Math.max(...spread), 2)} once settled (goal ${GOALS.settleS} s / ±${GOALS.band}: ${verdict(met.settle)}).`,
    summary: summaryRow(
      `Rendition sets at 3× capacity, brownout vs shedding only (load average ${loadRange})`,
      `yield ${percent(b3.yield)} (harvest ${fmt(b3['mean harvest'], 2)}) vs ${percent(s3.yield)}, with brownout, of ${fmt(b3.requests)} requests, ${b3['504']} answered 504, ${b3['late (> deadline + 100 ms)']} late, ${b3.timeouts} timed out${b3.other > 0 ? `, ${b3.other} other` : ''} (goal: none, every answer in time: ${verdict(met.at3)}); at 2× ${percent(b2.yield)} (harvest ${fmt(b2['mean harvest'], 2)}) vs ${percent(s2.yield)} (goal yield ≥ ${percent(GOALS.yieldAt2)}, harvest ≥ ${GOALS.harvestAt2}, p99 < ${GOALS.p99At2Ms} ms: ${verdict(met.at2)}); θ settles in ${fmt(Math.min(...settle), 2)}–${fmt(Math.max(...settle), 2)} s, ±${fmt(Math.max(...spread), 2)} after (goal ≤ ${GOALS.settleS} s, ±${GOALS.band}: ${verdict(met.settle)})`,
      command,
    ),
  };
}
