/**
 * The partitioning benchmark's figures, computed from benchmarks/results/partitioning.json:
 * the report (benchmarks/results/partitioning.md) and the fragments the READMEs quote
 * (`<!-- figures:partitioning:<fragment> -->`; see benchmarks/lib/figures.ts).
 */
import { type Figures, perSecond, summaryRow } from '../lib/figures.ts';
import { fmt, markdownTable, type Row } from '../lib/report.ts';
import { BATCH, type MaglevRebuildRecord, maglevRebuildRows, REBUILDS } from './maglev-rebuild.ts';

/** One strategy at one node count. */
export interface Record {
  strategy: string;
  nodes: number;
  /** Per second of CPU time. */
  lookupsPerSec: number;
  /** Per second of wall-clock time (lower when the machine is busy). */
  lookupsPerSecWall: number;
  peakToMean: number;
  movedOnAddRatio: number;
  movedOnRemoveRatio: number;
  movedOnAdd: number;
  movedOnRemove: number;
  buildMs: number;
  memoryBytes: number;
}

/** Lookup rates with weighted nodes. */
export interface WeightedRecord {
  strategy: string;
  nodes: number;
  weights: string;
  lookupsPerSec: number;
  lookupsPerSecWall: number;
}

/** benchmarks/results/partitioning.json */
export interface PartitioningResults {
  command: string;
  keys: number;
  machine: { node: string; cpus: number; cpuModel: string; date: string; loadAverage: number[] };
  notes: { [candidate: string]: string };
  records: Record[];
  weighted: WeightedRecord[];
  maglevRebuild: MaglevRebuildRecord[];
  goals: Row[];
}

/** Code these results measure: the check warns when it changed after the results were written. */
export const measures: readonly string[] = ['packages/partitioning/src', 'benchmarks/partitioning'];

const LARGE = 'maglev, 1,048,583 entries';
const x = (ratio: number): string => `${fmt(ratio, 3)} ×`;
const range = (values: number[], digits = 2): string => {
  const lo = fmt(Math.min(...values), digits);
  const hi = fmt(Math.max(...values), digits);
  return lo === hi ? lo : `${lo}–${hi}`;
};

export default function figures(results: PartitioningResults): Figures {
  const { records, weighted, maglevRebuild: rebuilds, machine } = results;
  const at = (strategy: string, nodes: number): Record => {
    const r = records.find((rec) => rec.strategy === strategy && rec.nodes === nodes);
    if (r === undefined) throw new Error(`partitioning results have no ${strategy} at ${nodes} nodes`);
    return r;
  };
  const weightedAt = (strategy: string, nodes: number): WeightedRecord => {
    const r = weighted.find((rec) => rec.strategy === strategy && rec.nodes === nodes);
    if (r === undefined) throw new Error(`partitioning results have no weighted ${strategy} at ${nodes} nodes`);
    return r;
  };
  const counts = [...new Set(records.map((r) => r.nodes))].sort((a, b) => a - b);
  const standard = (r: Record): boolean => !r.strategy.startsWith('npm ') && !r.strategy.includes(',');
  const hashringAt = (n: number): number => at('npm hashring', n).lookupsPerSec;
  const slowestRatio = (n: number): { strategy: string; ratio: number } => {
    const slowest = records.filter((r) => r.nodes === n && standard(r)).reduce((a, b) => (a.lookupsPerSec < b.lookupsPerSec ? a : b));
    return { strategy: slowest.strategy, ratio: slowest.lookupsPerSec / hashringAt(n) };
  };
  const moved = (r: Record): number => Math.max(r.movedOnAddRatio, r.movedOnRemoveRatio);
  const defaults = rebuilds.filter((r) => r.tableSize < 1_000_000);
  const large = rebuilds.find((r) => r.tableSize >= 1_000_000);
  const rebuild100 = rebuilds.find((r) => r.nodes === 100 && r.tableSize < 1_000_000);

  const balance100 = (s: string): string => fmt(at(s, 100).peakToMean, 3);
  const strategies = [
    '| strategy | lookup | balance (peak/mean, 100 nodes) | keys moved on a change (100 nodes) | weights | best for |',
    '| --- | --- | --- | --- | --- | --- |',
    `| \`ring\` | O(1) (radix-indexed ring) | ${balance100('ring')} at 1,024 points per node | ${x(moved(at('ring', 100)))} ideal | yes | general purpose; any membership change |`,
    `| \`jump\` | O(log n), no memory | ${balance100('jump')} | ${x(moved(at('jump', 100)))} ideal, but only the last bucket can leave | no | numbered shards that grow and shrink at the end |`,
    `| \`rendezvous\` | O(n), 8 nodes per step (WebAssembly SIMD) with equal weights | ${balance100('rendezvous')} | ${x(moved(at('rendezvous', 100)))} ideal | yes (exact) | up to about a thousand nodes (equal weights) or a few hundred (weighted); replica lists |`,
    `| \`maglev\` | O(1), one table read | ${balance100('maglev')} | ${x(moved(at('maglev', 100)))} ideal (${x(moved(at('maglev', 1000)))} at 1,000 nodes) | yes | fastest lookups (load balancers); table rebuilt per batch of changes, in a lookup or in the background |`,
    `| \`bounded-load\` | O(1) + walk past full nodes | ≤ \`c\` (1.25) under any key skew (${balance100('bounded-load')} here) | ${x(moved(at('bounded-load', 100)))} ideal (with no load) | yes | sticky sessions, hot keys |`,
    `| \`consistent-hash\` | O(log n) | ${balance100('consistent-hash')} (random points) | ${x(moved(at('consistent-hash', 100)))} ideal | points | migrating from the \`consistent-hash\` npm package |`,
  ].join('\n');

  const maglevMovement =
    `Measured by \`${results.command}\` (keys moved on one change, as a multiple of the ideal): ` +
    counts.map((n) => `${x(moved(at('maglev', n)))} at ${fmt(n)} nodes`).join(', ') +
    ` with the default table` +
    (records.some((r) => r.strategy === LARGE) ? `, ${x(moved(at(LARGE, 1000)))} at 1,000 nodes with 1,048,583 entries.` : '.');

  const rebuildCosts = [
    `Measured by \`${results.command}\`: in \`'sync'\` mode the first lookup after a change takes ${range(defaults.map((r) => r.syncFirstLookupMs))} ms of CPU at the default table size (${fmt(defaults[0]?.tableSize ?? 0)} entries)` +
      (large ? ` and ${fmt(large.syncFirstLookupMs)} ms at ${fmt(large.tableSize)};` : ';') +
      ` in \`'background'\` mode no lookup waits: the longest chunk is ${range(defaults.map((r) => r.backgroundMaxChunkMs))} ms (median over ${REBUILDS} rebuilds)` +
      (large ? `, ${fmt(large.backgroundMaxChunkMs)} ms at ${fmt(large.tableSize)} entries` : '') +
      `, over ${range(
        defaults.map((r) => r.backgroundChunks),
        3,
      )} event-loop turns, and new owners arrive ${range(defaults.map((r) => r.backgroundDurationMs))} ms after the change` +
      (large ? ` (${fmt(large.backgroundDurationMs)} ms at ${fmt(large.tableSize)} entries)` : '') +
      '.' +
      (rebuild100
        ? ` While a rebuild runs, lookups cost ${fmt(rebuild100.duringNsPerLookup)} ns instead of ${fmt(rebuild100.steadyNsPerLookup)} at 100 nodes (the fallback walk for a removed node's keys, and the chunks' cache traffic).`
        : ''),
  ].join('');

  const weightedSentence =
    `With weights 1–4 (\`${results.command}\`), lookups per second of CPU time: ` +
    [...new Set(weighted.map((w) => w.nodes))]
      .map(
        (n) =>
          `at ${fmt(n)} nodes rendezvous ${perSecond(weightedAt('rendezvous', n).lookupsPerSec)} (${perSecond(at('rendezvous', n).lookupsPerSec)} with equal weights), ring ${perSecond(weightedAt('ring', n).lookupsPerSec)}, maglev ${perSecond(weightedAt('maglev', n).lookupsPerSec)}; hashring ${perSecond(hashringAt(n))}`,
      )
      .join('; ') +
    '.';

  const ring160 = records.find((r) => r.strategy === 'ring, 160 points');
  const vnodes = ring160
    ? `At 100 nodes the ring's most loaded node carries ${fmt((ring160.peakToMean - 1) * 100, 2)}% above the mean with ketama's 160 points per node and ${fmt((at('ring', 100).peakToMean - 1) * 100, 2)}% with the default 1,024 (\`${results.command}\`).`
    : '';

  const others = counts.flatMap((n) => ['ring', 'jump', 'rendezvous', 'maglev'].map((st) => at(st, n).peakToMean));
  const adapterBalance =
    `Peak/mean with the \`consistent-hash\` package's defaults (\`${results.command}\`, ${fmt(results.keys)} sequential keys): ` +
    counts.map((n) => `${fmt(at('npm consistent-hash', n).peakToMean, 3)} at ${fmt(n)} nodes`).join(', ') +
    `, against ${range(others, 3)} for ring, jump, rendezvous and maglev; its random points change it from run to run.`;

  const lookups100 = ['maglev', 'ring', 'jump', 'rendezvous'].map((s) => `${s} ${perSecond(at(s, 100).lookupsPerSec)}`).join(', ');
  const weakest = counts.map((n) => ({ n, ...slowestRatio(n) }));
  const allFive = weakest.every((w) => w.ratio >= 5);
  const worstBalance = Math.max(...['ring', 'jump', 'rendezvous', 'maglev'].map((s) => at(s, 100).peakToMean));
  const summary = summaryRow(
    'Partitioning lookups at 100 nodes',
    `${lookups100}; weighted (1–4) rendezvous ${perSecond(weightedAt('rendezvous', 100).lookupsPerSec)}; ` +
      (allFive
        ? `every strategy ≥ 5× \`hashring\` at ${counts.map((n) => fmt(n)).join(', ')} nodes`
        : `slowest against \`hashring\`: ${weakest.map((w) => `${fmt(w.ratio, 2)}× (${w.strategy}) at ${fmt(w.n)}`).join(', ')}`) +
      `; peak/mean ≤ ${fmt(worstBalance, 3)}`,
    results.command,
  );

  const tables = counts.map((n) => {
    const rows = records.filter((r) => r.nodes === n);
    const table: Row[] = rows.map((r) => ({
      strategy: r.strategy,
      'lookups/s': r.lookupsPerSec,
      'wall lookups/s': r.lookupsPerSecWall,
      '× hashring': Number((r.lookupsPerSec / hashringAt(n)).toFixed(1)),
      'peak/mean': r.peakToMean,
      'moved on add (× ideal)': r.movedOnAddRatio,
      'moved on remove (× ideal)': r.movedOnRemoveRatio,
      'build ms (CPU)': r.buildMs,
      'memory KB': Math.round(r.memoryBytes / 1024),
    }));
    return `### ${fmt(n)} nodes\n\n${markdownTable(table)}`;
  });
  const weightedTable = markdownTable(
    weighted.map((w) => ({
      strategy: w.strategy,
      nodes: w.nodes,
      weights: w.weights,
      'lookups/s': w.lookupsPerSec,
      'wall lookups/s': w.lookupsPerSecWall,
      '× the same strategy, equal weights': Number((w.lookupsPerSec / at(w.strategy, w.nodes).lookupsPerSec).toFixed(2)),
    })),
  );
  const missed = results.goals.filter((g) => g.met !== 'yes');
  const findings = [
    `- **Goals:** ${results.goals.length - missed.length} of ${results.goals.length} met` +
      (missed.length > 0 ? `; missed: ${missed.map((g) => `${g.goal} (${g.measured})`).join('; ')}.` : '.'),
    `- **Lookups at 100 nodes** (per second of CPU time): ${lookups100}; the slowest Ballast strategy against \`hashring\` is ${weakest.map((w) => `${w.strategy} at ${fmt(w.n)} nodes (${fmt(w.ratio, 2)} ×)`).join(', ')}.`,
    `- **Weighted nodes:** ${weightedSentence}`,
    `- **Maglev movement:** ${maglevMovement} Its cascade of displaced entries grows as entries per node shrink; the ring and rendezvous stay near 1 × at every size.`,
    `- **Maglev rebuilds:** ${rebuildCosts}`,
    vnodes === '' ? '' : `- **Virtual nodes:** ${vnodes}`,
    `- Lookup rates are per second of CPU time: other work shared the machine during the run (load average ${machine.loadAverage.join(', ')} at its end), so wall-clock rates, shown beside them, are lower and vary from run to run. Peak/mean and movement are exact for the ${fmt(results.keys)} keys and do not depend on machine load; \`consistent-hash\` figures change from run to run because its points are random.`,
  ]
    .filter((line) => line !== '')
    .join('\n');

  const notes = Object.entries(results.notes).map(([name, note]) => `- **${name}**: ${note}`);
  const report = [
    `\`${results.command}\` — ${fmt(results.keys)} keys (\`user:0\` … \`user:${results.keys - 1}\`), node ids \`node-0\` …; Node ${machine.node}, ${machine.cpus} × ${machine.cpuModel}, ${machine.date}, load average ${machine.loadAverage.join(', ')} at the end of the run.`,
    'Lookups/s: string-key lookups per second of CPU time (median of 7 samples; wall-clock rates beside them are lower and noisier on a shared machine). × hashring compares CPU rates from this run.',
    `Peak/mean: the most loaded node over the mean, for the ${fmt(results.keys)} keys.`,
    `Moved on add / remove: share of the keys whose owner changed when \`node-<n>\` was added / \`node-<n-1>\` removed, divided by the ideal 1/(n+1) / 1/n.`,
    'Memory: growth of the V8 heap plus ArrayBuffer memory (where typed arrays live) after building. Build: CPU time to construct with every node plus the first lookup.',
    '',
    ...notes,
    '',
    ...tables.flatMap((t) => [t, '']),
    '### Weighted nodes',
    '',
    'Node `i` has weight 1 + (i mod 4); lookups per second of CPU time, as above.',
    '',
    weightedTable,
    '',
    '### Maglev rebuild',
    '',
    `After each of ${REBUILDS} changes (the last node leaves, then joins again), per mode: \`sync\` rebuilds inside the first lookup; \`background\` (chunks of 32,768 work units, the default \`rebuildChunk\`, one per event-loop turn) keeps serving from the previous table. Lookups are timed in batches of ${fmt(BATCH)} string keys, one batch per event-loop turn, with no rebuild running (steady) and while a background rebuild runs (its chunks interleave with the batches); medians over the rebuilds. Rebuild and chunk times are process CPU time, so that time this shared machine gave to other processes does not count; the background column "change to swap" is wall-clock time.`,
    '',
    markdownTable(maglevRebuildRows(rebuilds)),
    '',
    '### Goals',
    '',
    markdownTable(results.goals),
    '',
    '### What the run shows',
    '',
    findings,
  ].join('\n');

  return {
    summary,
    strategies,
    'maglev-movement': maglevMovement,
    'rebuild-costs': rebuildCosts,
    'adapter-balance': adapterBalance,
    weighted: weightedSentence,
    vnodes,
    report,
  };
}
