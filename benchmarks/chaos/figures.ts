/**
 * The chaos run's figures against its goals, from benchmarks/results/chaos.json (see
 * benchmarks/lib/figures.ts).
 */
import type { ChaosResult } from '@ballast/app-system';
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable } from '../lib/report.ts';

interface ChaosResults extends ChaosResult {
  command: string;
  loadAverage: { before: number[]; after: number[] };
  verdicts: Array<Record<string, string>>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = [
  'apps/system/src/chaos.ts',
  'apps/system/src/chaos-drain.ts',
  'apps/system/src/launcher.ts',
  'apps/system/src/topology.ts',
  'benchmarks/chaos',
];

export default function figures(r: ChaosResults): Figures {
  const faults = r.faults.map((f, i) => ({
    '#': i + 1,
    fault: `${f.kind} ${f.target}`,
    'detected s': f.detectedMs === undefined ? '—' : fmt(f.detectedMs / 1000),
    'recovered s': f.recoveredMs === undefined ? '—' : fmt(f.recoveredMs / 1000),
    'client saw failures for s': f.clientRecoveredMs === undefined ? '—' : fmt(f.clientRecoveredMs / 1000),
  }));
  const head =
    `\`${r.command}\`: ${r.durationMs / 1000} s at ${Math.round(r.share * 100)}% of a measured capacity of ${fmt(r.capacityPerSec)} requests/s ` +
    `(${fmt(r.ratePerSec)}/s offered, seed ${r.seed}), load average ${r.loadAverage.before.join(' ')} before and ${r.loadAverage.after.join(' ')} after, ` +
    `${r.totals.sent} requests; ${r.invariants.acknowledged} jobs acknowledged.`;
  return {
    goals: `${head}\n\n${markdownTable(r.verdicts)}`,
    faults: markdownTable(faults),
    summary: summaryRow(
      `Chaos: distributed deployment under ${r.faults.length} faults (load average ${r.loadAverage.before[0]} before, ${r.loadAverage.after[0]} after)`,
      `yield ${(r.totals.yield * 100).toFixed(2)}%, p99 ${Math.round(r.p99OutsideFailover)} ms outside failovers, ${r.invariants.lost.length} lost, ${r.invariants.finishedTwice.length} twice, ${r.invariants.usage.discrepancies} usage discrepancies`,
      r.command,
    ),
  };
}
