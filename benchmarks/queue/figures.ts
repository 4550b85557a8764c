/**
 * The queue benchmark's figures, from benchmarks/results/queue.json (see
 * benchmarks/lib/figures.ts): named Markdown fragments (tables and sentences) that the
 * report (`queue.md`) is made of and that READMEs quote between
 * `<!-- figures:queue:<fragment> -->` markers.
 */
import { type Figures, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable, type Row } from '../lib/report.ts';
import type { ProcessShape } from './load-runner.ts';

/** How one named load was spread over processes. */
export interface Shape extends ProcessShape {
  name: string;
}

/** What `run.ts` writes to benchmarks/results/queue.json. */
export interface QueueResults {
  machine: { node: string; cpus: number; cpuModel: string; date: string };
  quick: boolean;
  loadAverage: { before: number; after: number };
  baseline: string;
  /** Another version measured beside (`--compare=<commit>`), whose rows are named by that commit. */
  compare?: string | null;
  rounds: number;
  shapes: Shape[];
  /** The load the extrapolation is made from. */
  extrapolateFrom: string;
  cost: { rows: Row[] };
  durability: Row[];
  shards: Row[];
  failures: Row[];
}

/** Code these results measure. */
export const measures: readonly string[] = ['apps/queue/src', 'benchmarks/queue'];

/** The goal: Redis CPU per full job cycle, µs (one core ≈ 10,000 jobs/s). */
export const GOAL_US = 100;
/** The primary column: the redis-server process's CPU time (/proc) ÷ jobs. */
export const PROC = 'Redis CPU µs/job (/proc, median)';

/** Primary cores, and shards kept under 70% busy, for 10,000 jobs/s at `us` µs per job. */
export function forTenThousand(us: number): { cores: number; shards: number } {
  const cores = (10_000 * us) / 1e6;
  return { cores, shards: Math.ceil(cores / 0.7) };
}

/**
 * What a wake-up of the primary costs, from the two smallest loads: Redis CPU per job as
 * a line through (wake-ups per job, µs per job) of the queue now at both. Empty for
 * results without the wake-ups column.
 */
function wakeUps(rows: Row[], small: string, middle: string): string {
  const pick = (load: string, column: string): number =>
    Number(rows.find((r) => r.load === load && r.queue === 'now')?.[column] ?? Number.NaN);
  const [u1, w1, u2, w2] = [pick(small, PROC), pick(small, 'wake-ups/job'), pick(middle, PROC), pick(middle, 'wake-ups/job')];
  if (![u1, w1, u2, w2].every(Number.isFinite) || w1 <= w2) return '';
  const perWake = (u1 - u2) / (w1 - w2);
  const perJob = u2 - perWake * w2;
  return (
    `The primary woke ${fmt(w1, 2)} times per job at ${small} and ${fmt(w2, 2)} at ${middle}; a line through the two ` +
    `puts a wake-up at about ${fmt(perWake)} µs of its CPU and a job at about ${fmt(perJob)} µs beside them, so at ` +
    `${small} the wake-ups are ${fmt(perWake * w1)} of the ${fmt(u1)} µs per job.`
  );
}

export default function figures(input: QueueResults): Figures {
  const rows = input.cost.rows;
  // The version measured beside, named by its commit in its rows.
  const other = rows.map((r) => String(r.queue)).find((q) => q !== 'before' && q !== 'now');
  const results: QueueResults = { ...input, compare: input.compare ?? other ?? null };
  const cell = (load: string, queue: string): number => Number(rows.find((r) => r.load === load && r.queue === queue)?.[PROC]);
  const loads = results.shapes.map((s) => s.name);
  const goal = loads
    .map((load) => {
      const now = cell(load, 'now');
      const before = cell(load, 'before');
      const verdict = now <= GOAL_US ? 'met' : 'not met';
      const other = results.compare ? `, ${fmt(cell(load, results.compare))} at ${results.compare}` : '';
      return `${load}: ${fmt(now)} µs against ${fmt(before)} before${other} (${fmt(now / before, 2)}× before; ≤ ${GOAL_US} µs ${verdict})`;
    })
    .join('; ');
  const us = cell(results.extrapolateFrom, 'now');
  const { cores, shards } = forTenThousand(us);
  const extrapolation =
    `At ${fmt(us)} µs of primary CPU per job (${results.extrapolateFrom}), one Redis core carries about ` +
    `${fmt(Math.round(1e6 / us / 100) * 100)} jobs/s, and 10,000 jobs/s needs ${fmt(cores, 2)} primary cores: ` +
    `${shards} shard(s) kept under 70% busy.`;
  const perLoad: Row[] = loads.map((load) => {
    const x = cell(load, 'now');
    const ten = forTenThousand(x);
    return {
      load,
      'µs/job': x,
      'jobs/s per Redis core': Math.round(1e6 / x / 100) * 100,
      'cores for 10,000 jobs/s': ten.cores,
      'shards (≤ 70% busy)': ten.shards,
    };
  });
  const loadLine = results.shapes
    .map(
      (s) =>
        `${s.name} = ${s.producerProcesses} × ${s.producersPerProcess} producers, ${s.consumerProcesses} × ${s.consumersPerProcess} consumers`,
    )
    .join('; ');
  const smallest = loads[0] as string;
  const ratio = (load: string): string => `${fmt(cell(load, 'now') / cell(load, 'before'), 2)}×`;
  const middle = loads[1] as string;
  // Two script calls per job (ENQUEUE, FINISH): jobs per call = 2 ÷ script calls per job.
  const scriptCalls = Number(rows.find((r) => r.load === smallest && r.queue === 'now')?.['script calls/job']);
  const perCall = fmt(2 / scriptCalls, 2);
  const metAt = loads.filter((load) => cell(load, 'now') <= GOAL_US);
  const missedAt = loads.filter((load) => cell(load, 'now') > GOAL_US);
  const verdicts = [
    metAt.length > 0 ? `≤ ${GOAL_US} µs met at ${metAt.join(' / ')}` : `≤ ${GOAL_US} µs met at no load`,
    missedAt.length > 0 ? `**not met** at ${missedAt.join(' / ')}` : 'met at every load',
  ].join('; ');
  const command = `npm run bench:queue${results.quick ? ' -- --quick' : ''}${results.compare ? `${results.quick ? '' : ' --'} --compare=${results.compare}` : ''}`;
  const load = `load average ${fmt(results.loadAverage.before)} → ${fmt(results.loadAverage.after)}`;
  const fragments: Figures = {
    'wake-ups': wakeUps(rows, smallest, middle),
    summary: summaryRow(
      `Queue, Redis CPU per full job cycle (enqueue → claim → complete → result read; primary + replica, \`WAIT 1\`, AOF everysec, no-op workers; ${load})`,
      `${fmt(cell(middle, 'now'))} µs at ${middle}, ${fmt(us)} µs at ${results.extrapolateFrom} (${ratio(middle)} and ${ratio(results.extrapolateFrom)} the queue before); one Redis core ≈ ${fmt(Math.round(1e6 / us / 100) * 100)} jobs/s; ${fmt(cell(smallest, 'now'))} µs with ${smallest} (${perCall} jobs per script call, ${ratio(smallest)}); ${verdicts}`,
      command,
    ),
    cost: markdownTable(rows),
    'cost-short': markdownTable(rows, [
      'load',
      'queue',
      PROC,
      'commandstats µs/job',
      'top-level calls/job',
      'wake-ups/job',
      'script calls/job',
      'WAITs/job',
      'jobs/s',
      'p99 enqueue→ack ms',
    ]),
    goal: `Redis CPU per full job cycle (the primary's process, /proc; ${load}): ${goal}.`,
    durability: markdownTable(results.durability),
    shards: markdownTable(results.shards),
    failures: markdownTable(results.failures),
    extrapolation,
    'extrapolation-table': markdownTable(perLoad),
  };
  const m = results.machine;
  fragments.report = [
    '# bench:queue',
    '',
    `\`${command}\` — ${m.cpuModel}, ${m.cpus} cores, Node ${m.node}, ${m.date}; load average ${results.loadAverage.before.toFixed(2)} → ${results.loadAverage.after.toFixed(2)}.`,
    '',
    `## Redis cost per full job cycle (baseline: the queue at ${results.baseline}${results.compare ? `; also the queue at ${results.compare}` : ''})`,
    '',
    `Primary + 1 replica, \`WAIT 1\`, appendfsync everysec. Load (closed-loop producers → no-op consumers, each process with its own queue handle): ${loadLine}. Median of ${results.rounds} alternating round(s).`,
    '',
    fragments.cost,
    '',
    fragments.goal,
    '',
    fragments['wake-ups'] as string,
    '',
    '## The cost of durability',
    '',
    fragments.durability,
    '',
    '## Shards',
    '',
    fragments.shards,
    '',
    '## Failure scenarios',
    '',
    fragments.failures,
    '',
    '## Extrapolation',
    '',
    extrapolation,
    '',
    fragments['extrapolation-table'] as string,
    '',
  ].join('\n');
  return fragments;
}
