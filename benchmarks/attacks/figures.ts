/**
 * The attack benchmark's figures, from benchmarks/results/attacks.json (see
 * benchmarks/lib/figures.ts): the well-behaved client's yield and p99 beside each attack.
 */
import type { Figures } from '../lib/figures.ts';
import { fmt, markdownTable, type Row } from '../lib/report.ts';

interface AttacksResults {
  machine: { cpus: number; cpuModel: string; node: string; date: string };
  ratePerSec: number;
  runMs: number;
  rounds: number;
  quick?: boolean;
  loadBefore: number;
  loadAfter: number;
  rows: Row[];
  details: Array<{ scenario: string; what: string }>;
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['apps', 'benchmarks/attacks'];

export default function figures(results: AttacksResults): Figures {
  const { machine } = results;
  const met = results.rows.filter((r) => r.goal === 'met').length;
  const command = `npm run bench:attacks${results.quick ? ' -- --quick' : ''}`;
  return {
    table: [
      `\`${command}\` on ${machine.cpus} cores (${machine.cpuModel}), Node ${machine.node}, ${machine.date.slice(0, 10)};`,
      `1-minute load average ${fmt(results.loadBefore, 2)} before, ${fmt(results.loadAfter, 2)} after (the \`load\` column: when each attack's system started).`,
      `A well-behaved client sends ${results.ratePerSec} small resizes per second; per attack a fresh system, ${results.rounds} × (${results.runMs / 1000} s quiet,`,
      `${results.runMs / 1000} s beside the attack, ${results.runMs / 1000} s after it stopped). Goal: yield ≥ 99.9% and p99 ≤ 1.5 × quiet;`,
      `met under ${met} of ${results.rows.length} attacks.`,
      '',
      markdownTable(results.rows),
      '',
      ...results.details.map((d) => `- **${d.scenario}**: ${d.what}.`),
    ].join('\n'),
  };
}
