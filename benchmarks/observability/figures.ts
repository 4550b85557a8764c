/**
 * The observability benchmark's figures against its goal, from
 * benchmarks/results/observability.json (see benchmarks/lib/figures.ts).
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { median } from '../lib/measure.ts';
import { fmt, markdownTable } from '../lib/report.ts';
import type { Throughput } from '../lib/system-process.ts';

interface ObservabilityResults {
  machine: { cpus: number; cpuModel: string; node: string };
  /** Written since `-- --quick` runs were told apart; absent: a full run. */
  quick?: boolean;
  loadAverage: { before: number; after: number };
  rounds: number;
  roundMs: number;
  results: { on: Throughput[]; off: Throughput[] };
  ratios: number[];
  logBytes: number;
  direct: { recordUs: number; logsUs: number; cpuPerRequestUs: number; share: number };
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['apps/gateway/src/observability', 'apps/shared/src', 'benchmarks/observability'];

/** The goal: throughput per core with observability on at least this share of it off. */
const GOAL_RATIO = 0.97;

const verdict = (met: boolean): string => (met ? 'met' : '**not met**');

export default function figures(results: ObservabilityResults): Figures {
  const { on, off } = results.results;
  const { ratios, direct } = results;
  const ratio = median(ratios);
  const low = Math.min(...ratios);
  const high = Math.max(...ratios);
  const warmUp = 20; // requests sent to each system before the rounds, as run.ts does
  const bytesPerRequest = results.logBytes / Math.max(1, on.reduce((n, r) => n + r.ok + r.other, 0) + warmUp);
  const directCost = direct.recordUs + direct.logsUs;
  const goal = `on within ${fmt((1 - GOAL_RATIO) * 100)}% of off, ratio ≥ ${GOAL_RATIO}`;
  const { before, after } = results.loadAverage;
  const command = `npm run bench:observability${results.quick ? ' -- --quick' : ''}`;
  const row = (system: string, runs: Throughput[], r?: number[]) => ({
    system,
    'req/s': median(runs.map((x) => x.perSecond)),
    'req per CPU-s': median(runs.map((x) => x.perCpuSecond)),
    [`on / off (median of ${results.rounds})`]: r ? median(r) : 1,
    'range over rounds': r ? `${fmt(Math.min(...r))}–${fmt(Math.max(...r))}` : '—',
  });
  return {
    table: [
      `The committed run of \`${command}\` (${results.machine.cpus} cores, ${results.machine.cpuModel}, Node ${results.machine.node.replace(/^v/, '')}, ${results.rounds} alternating rounds of ${fmt(results.roundMs / 1000)} s each; **1-minute load average ${fmt(before)} before, ${fmt(after)} after**; a request cost ${fmt(direct.cpuPerRequestUs / 1000)} ms of CPU with observability off):`,
      '',
      markdownTable([row('observability off, logs silent', off), row('observability on, logs at info', on, ratios)]),
      '',
      `Side by side: on/off ${fmt(ratio)} (single rounds ${fmt(low)}–${fmt(high)}); goal ${goal}: ${verdict(ratio >= GOAL_RATIO)}.`,
    ].join('\n'),
    direct: `**One front-door record costs ${fmt(direct.recordUs)} µs of CPU and the three log lines of a request (gateway, API server, worker; ~${fmt(Math.round(bytesPerRequest))} bytes) ${fmt(direct.logsUs)} µs, together ${fmt(direct.share * 100, 2)}% of the CPU a request costs** (goal ≤ ${fmt((1 - GOAL_RATIO) * 100)}%: ${verdict(direct.share <= 1 - GOAL_RATIO)}); the logs are ${fmt((direct.logsUs / directCost) * 100, 2)}% of it.`,
    summary: summaryRow(
      `Observability cost (front-door SLIs, stage timings, dashboard, logs at \`info\`; load average ${fmt(before)} before, ${fmt(after)} after)`,
      `side by side, throughput per core on/off ${fmt(ratio)}× (rounds ${fmt(low)}–${fmt(high)}; goal ≥ ${GOAL_RATIO}×: ${verdict(ratio >= GOAL_RATIO)}); measured directly, ${fmt(direct.share * 100, 2)}% of a request's CPU (${fmt(direct.recordUs, 2)} µs + ${fmt(direct.logsUs)} µs of logs; goal ≤ ${fmt((1 - GOAL_RATIO) * 100)}%: ${verdict(direct.share <= 1 - GOAL_RATIO)})`,
      command,
    ),
  };
}
