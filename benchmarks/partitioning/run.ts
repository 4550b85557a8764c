/**
 * Partitioning benchmark: every @ballast/partitioning strategy side by side with the npm
 * peers `consistent-hash` and `hashring`, at 10, 100 and 1,000 nodes over 1,000,000 keys.
 *
 * Per strategy and node count: lookups per second (timed loop, median of samples),
 * peak/mean load over the 1M keys, keys moved when a node is added and when one is
 * removed (as a multiple of the ideal 1/n), build time and heap memory. Then Maglev's
 * rebuilds (maglev-rebuild.ts): the first lookup after a change in 'sync' mode against a
 * 'background' rebuild's duration, chunks and the lookup cost while it runs. Also: lookups
 * with weighted nodes (weights 1–4), a ring at ketama's 160 points per node, and maglev's
 * movement with a 1,048,583-entry table at 1,000 nodes.
 *
 *   npm run bench:partitioning
 *
 * Writes benchmarks/results/partitioning.json and partitioning.md (tables from figures.ts),
 * then fills the README blocks that quote them (`<!-- figures:partitioning:… -->`).
 */
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import { BoundedLoadPartitioner, createPartitioner, type NodeEntry, type Partitioner } from '@ballast/partitioning';
import { publishFigures } from '../lib/figures.ts';
import { heapUsed, median, timeBatch } from '../lib/measure.ts';
import { fmt, machine, printTable, type Row, writeResult } from '../lib/report.ts';
import figures, { type PartitioningResults, type Record, type WeightedRecord } from './figures.ts';
import { maglevRebuild, maglevRebuildRows } from './maglev-rebuild.ts';

const require = createRequire(import.meta.url);
const ConsistentHash = require('consistent-hash') as new () => {
  add(node: string): unknown;
  remove(node: string): unknown;
  get(key: string): string;
};
const HashRing = require('hashring') as new (
  servers: string[],
) => {
  add(node: string): unknown;
  remove(node: string): unknown;
  get(key: string): string;
};

const KEY_COUNT = 1_000_000;
const NODE_COUNTS = (process.env.BENCH_NODES ?? '10,100,1000').split(',').map(Number);
/** For quick partial runs while developing: BENCH_NODES=100 BENCH_ONLY=ring,jump (results are then not written). */
const ONLY = process.env.BENCH_ONLY?.split(',');
const PARTIAL = process.env.BENCH_NODES !== undefined || ONLY !== undefined;
const SAMPLES = 7;
const SAMPLE_MS = 60;
const COMMAND = 'npm run bench:partitioning';
/** A larger table than the default, to show how rebuild costs grow with it. */
const LARGE_TABLE = 1_048_583;

/** A candidate under test: how to build it and how to call it. */
interface Candidate {
  name: string;
  /** `ballast` strategies or an npm peer. */
  kind: 'ballast' | 'peer';
  build(nodes: string[]): Subject;
  note?: string;
  /** Measured only at these node counts (default: all). */
  only?: number[];
}

interface Subject {
  /** The object whose `method` does a lookup, called from a loop compiled for it. */
  target: object;
  method: string;
  owner(key: string): string;
  add(node: string): void;
  remove(node: string): void;
  /** Peak/mean when it differs from counting owner() (bounded-load counts assign()). */
  peakToMean?(keys: string[]): number;
}

const ballast = (strategy: 'ring' | 'jump' | 'rendezvous' | 'maglev' | 'consistent-hash'): Candidate => ({
  name: strategy,
  kind: 'ballast',
  build(nodes) {
    const p: Partitioner = createPartitioner({ strategy, nodes });
    p.owner('warm-up');
    return { target: p, method: 'owner', owner: (k) => p.owner(k), add: (n) => p.add(n), remove: (n) => p.remove(n) };
  },
});

/** A Ballast strategy with non-default options, at some node counts only. */
const variant = (name: string, only: number[], note: string, make: (nodes: string[]) => Partitioner): Candidate => ({
  name,
  kind: 'ballast',
  note,
  only,
  build(nodes) {
    const p = make(nodes);
    p.owner('warm-up');
    return { target: p, method: 'owner', owner: (k) => p.owner(k), add: (n) => p.add(n), remove: (n) => p.remove(n) };
  },
});

const candidates: Candidate[] = [
  ballast('ring'),
  ballast('jump'),
  ballast('rendezvous'),
  ballast('maglev'),
  {
    name: 'bounded-load',
    kind: 'ballast',
    note: 'lookups/s and peak/mean count assign() (loads accumulate); movement compares owner() with no load, i.e. its ring',
    build(nodes) {
      const p = new BoundedLoadPartitioner({ nodes });
      p.owner('warm-up');
      return {
        target: p,
        method: 'assign',
        owner: (k) => p.owner(k),
        add: (n) => p.add(n),
        remove: (n) => p.remove(n),
        peakToMean(keys) {
          p.clearLoads();
          for (const k of keys) p.assign(k);
          const loads = Object.values(p.stats().loads);
          const max = Math.max(...loads);
          p.clearLoads();
          return max / (keys.length / loads.length);
        },
      };
    },
  },
  ballast('consistent-hash'),
  {
    name: 'npm consistent-hash',
    kind: 'peer',
    note: 'consistent-hash@1.2 with its defaults (random placement, 40 points per node)',
    build(nodes) {
      const r = new ConsistentHash();
      for (const n of nodes) r.add(n);
      r.get('warm-up');
      return {
        target: r,
        method: 'get',
        owner: (k) => r.get(k),
        add: (n) => void r.add(n),
        remove: (n) => {
          r.remove(n);
          r.get('rebuild'); // its point map must be rebuilt before the next add()
        },
      };
    },
  },
  {
    name: 'npm hashring',
    kind: 'peer',
    note: 'hashring@3.2 with its defaults (MD5, 40×4 points per node, 5,000-entry LRU cache)',
    build(nodes) {
      const r = new HashRing(nodes);
      r.get('warm-up');
      return { target: r, method: 'get', owner: (k) => r.get(k), add: (n) => void r.add(n), remove: (n) => void r.remove(n) };
    },
  },
  variant('ring, 160 points', [100], "the ring at ketama's 160 points per node instead of the default 1,024", (nodes) =>
    createPartitioner({ strategy: 'ring', nodes, vnodes: 160 }),
  ),
  variant(`maglev, ${fmt(LARGE_TABLE)} entries`, [1000], `maglev with tableSize ${fmt(LARGE_TABLE)} instead of the default`, (nodes) =>
    createPartitioner({ strategy: 'maglev', nodes, tableSize: LARGE_TABLE }),
  ),
];

/** Strategies measured again with weighted nodes: node i has weight 1 + (i mod 4). */
const WEIGHTED = ['rendezvous', 'ring', 'maglev'] as const;
const weightOf = (i: number): number => 1 + (i % 4);

/**
 * Lookups per second of CPU time, with a loop compiled for this candidate so its call site
 * stays monomorphic. CPU time (process.cpuUsage) rather than wall time, because the machine
 * is shared: time spent waiting for a core is not the partitioner's. Wall-clock rates are
 * reported beside it.
 */
function lookupRates(subject: Subject, keys: string[]): { cpu: number; wall: number } {
  const loop = new Function(
    'p',
    'keys',
    'from',
    'count',
    `let s = 0; const n = keys.length; for (let i = 0; i < count; i++) { s += p.${subject.method}(keys[(from + i) % n]).length; } return s;`,
  ) as (p: object, keys: string[], from: number, count: number) => number;
  // Calibrate the batch so one sample takes about SAMPLE_MS.
  let count = 10_000;
  let from = 0;
  let sink = 0;
  for (;;) {
    const start = performance.now();
    sink += loop(subject.target, keys, from, count);
    from += count;
    const ms = performance.now() - start;
    if (ms >= SAMPLE_MS / 4) {
      count = Math.max(1000, Math.round((count * SAMPLE_MS) / ms));
      break;
    }
    count *= 4;
  }
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const { cpuNs, wallNs } = timeBatch(() => {
      sink += loop(subject.target, keys, from, count);
    });
    from += count;
    wall.push((count * 1e9) / wallNs);
    cpu.push((count * 1e9) / Math.max(1000, cpuNs));
  }
  if (sink === -1) console.log(sink);
  return { cpu: median(cpu), wall: median(wall) };
}

function measureCandidate(candidate: Candidate, n: number, keys: string[]): Record {
  const nodes = Array.from({ length: n }, (_, i) => `node-${i}`);
  const memoryBefore = memoryUsed();
  let subject!: Subject;
  const buildMs =
    timeBatch(() => {
      subject = candidate.build(nodes);
    }).cpuNs / 1e6;
  const memoryBytes = Math.max(0, memoryUsed() - memoryBefore);

  // Owners before any change; load balance from the same pass.
  const before = new Array<string>(keys.length);
  const counts = new Map<string, number>();
  for (let i = 0; i < keys.length; i++) {
    const o = subject.owner(keys[i]!);
    before[i] = o;
    counts.set(o, (counts.get(o) ?? 0) + 1);
  }
  const peakToMean = subject.peakToMean ? subject.peakToMean(keys) : Math.max(...counts.values()) / (keys.length / n);

  // Add one node, count moves, then take it out again: back to the original mapping.
  subject.add(`node-${n}`);
  let moved = 0;
  for (let i = 0; i < keys.length; i++) if (subject.owner(keys[i]!) !== before[i]) moved++;
  const movedOnAdd = moved / keys.length;
  subject.remove(`node-${n}`);

  // Remove the last node (the only cheap removal for jump).
  subject.remove(`node-${n - 1}`);
  moved = 0;
  for (let i = 0; i < keys.length; i++) if (subject.owner(keys[i]!) !== before[i]) moved++;
  const movedOnRemove = moved / keys.length;
  subject.add(`node-${n - 1}`);

  before.length = 0;
  heapUsed(); // collect now, so no collector thread runs during the timed samples
  const rates = lookupRates(subject, keys);
  return {
    strategy: candidate.name,
    nodes: n,
    lookupsPerSec: Math.round(rates.cpu),
    lookupsPerSecWall: Math.round(rates.wall),
    peakToMean: round(peakToMean, 4),
    movedOnAddRatio: round(movedOnAdd / (1 / (n + 1)), 4),
    movedOnRemoveRatio: round(movedOnRemove / (1 / n), 4),
    movedOnAdd: round(movedOnAdd, 5),
    movedOnRemove: round(movedOnRemove, 5),
    buildMs: round(buildMs, 2),
    memoryBytes,
  };
}

/** Lookup rates with weighted nodes (rendezvous then takes its scalar, logarithmic path). */
function measureWeighted(strategy: (typeof WEIGHTED)[number], n: number, keys: string[]): WeightedRecord {
  const nodes: NodeEntry[] = Array.from({ length: n }, (_, i) => ({ id: `node-${i}`, weight: weightOf(i) }));
  const p = createPartitioner({ strategy, nodes });
  p.owner('warm-up');
  heapUsed();
  const rates = lookupRates({ target: p, method: 'owner', owner: (k) => p.owner(k), add: () => {}, remove: () => {} }, keys);
  return { strategy, nodes: n, weights: '1–4', lookupsPerSec: Math.round(rates.cpu), lookupsPerSecWall: Math.round(rates.wall) };
}

/** JS heap plus ArrayBuffer backing stores (typed arrays live outside the heap), after a full collection. */
function memoryUsed(): number {
  heapUsed();
  const { heapUsed: heap, arrayBuffers } = process.memoryUsage();
  return heap + arrayBuffers;
}

function round(x: number, digits: number): number {
  return Number(x.toFixed(digits));
}

async function main(): Promise<void> {
  const startedAt = performance.now();
  const keys = Array.from({ length: KEY_COUNT }, (_, i) => `user:${i}`);
  const records: Record[] = [];
  for (const n of NODE_COUNTS) {
    for (const candidate of candidates) {
      if ((ONLY && !ONLY.includes(candidate.name)) || (candidate.only && !candidate.only.includes(n))) continue;
      const record = measureCandidate(candidate, n, keys);
      records.push(record);
      console.log(
        `${String(n).padStart(4)} nodes  ${candidate.name.padEnd(26)} ${fmt(record.lookupsPerSec).padStart(12)} lookups/s  peak/mean ${record.peakToMean}`,
      );
    }
  }
  const weighted: WeightedRecord[] = [];
  for (const n of NODE_COUNTS.filter((count) => count >= 100)) {
    for (const strategy of WEIGHTED) {
      if (ONLY && !ONLY.includes(`weighted ${strategy}`)) continue;
      const record = measureWeighted(strategy, n, keys);
      weighted.push(record);
      console.log(`${String(n).padStart(4)} nodes  weighted ${strategy.padEnd(17)} ${fmt(record.lookupsPerSec).padStart(12)} lookups/s`);
    }
  }

  const rebuildSizes = NODE_COUNTS.map((nodes) => ({ nodes, tableSize: undefined as number | undefined }));
  if (NODE_COUNTS.includes(1000)) rebuildSizes.push({ nodes: 1000, tableSize: LARGE_TABLE });
  const rebuilds = !ONLY || ONLY.includes('maglev-rebuild') ? await maglevRebuild(rebuildSizes, keys) : [];
  if (rebuilds.length > 0) printTable('Maglev rebuild after one node leaves or joins', maglevRebuildRows(rebuilds));

  if (PARTIAL) return;
  const meta = { ...machine(), loadAverage: loadavg().map((l) => round(l, 2)) };
  const results: PartitioningResults = {
    command: COMMAND,
    keys: KEY_COUNT,
    machine: meta,
    notes: Object.fromEntries(candidates.filter((c) => c.note).map((c) => [c.name, c.note!])),
    records,
    weighted,
    maglevRebuild: rebuilds,
    goals: checkGoals(records),
  };
  printTable('Goals', results.goals);
  writeResult('partitioning.json', results);
  writeResult('partitioning.md', `## Partitioning benchmark\n\n${figures(results).report}\n`);
  console.log(
    `\nwrote benchmarks/results/partitioning.json and partitioning.md in ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
  );
  await publishFigures('partitioning');
}

function checkGoals(records: Record[]): Row[] {
  const at = (strategy: string, nodes: number): Record => records.find((r) => r.strategy === strategy && r.nodes === nodes)!;
  const rows: Row[] = [];
  const goal = (name: string, measured: string, met: boolean): void => void rows.push({ goal: name, measured, met: met ? 'yes' : 'NO' });
  goal('jump ≥ 10 M lookups/s at 100 nodes', fmt(at('jump', 100).lookupsPerSec), at('jump', 100).lookupsPerSec >= 10e6);
  goal('maglev ≥ 10 M lookups/s at 100 nodes', fmt(at('maglev', 100).lookupsPerSec), at('maglev', 100).lookupsPerSec >= 10e6);
  goal('ring ≥ 3 M lookups/s at 100 nodes', fmt(at('ring', 100).lookupsPerSec), at('ring', 100).lookupsPerSec >= 3e6);
  for (const n of NODE_COUNTS) {
    const base = at('npm hashring', n).lookupsPerSec;
    const ours = records.filter((r) => r.nodes === n && !r.strategy.startsWith('npm ') && !r.strategy.includes(','));
    const slowest = ours.reduce((a, b) => (a.lookupsPerSec < b.lookupsPerSec ? a : b));
    goal(
      `every strategy ≥ 5 × hashring at ${n} nodes`,
      `slowest: ${slowest.strategy} ${fmt(slowest.lookupsPerSec / base)} ×`,
      slowest.lookupsPerSec >= 5 * base,
    );
  }
  for (const s of ['jump', 'rendezvous', 'maglev']) {
    goal(`${s} peak/mean ≤ 1.05 at 100 nodes`, String(at(s, 100).peakToMean), at(s, 100).peakToMean <= 1.05);
  }
  goal('ring peak/mean ≤ 1.15 at 100 nodes', String(at('ring', 100).peakToMean), at('ring', 100).peakToMean <= 1.15);
  for (const n of NODE_COUNTS) {
    const r = at('bounded-load', n);
    goal(`bounded-load peak/mean ≤ c = 1.25 at ${n} nodes`, String(r.peakToMean), r.peakToMean <= 1.25);
  }
  for (const s of ['ring', 'jump', 'rendezvous', 'maglev']) {
    const limit = s === 'maglev' ? 1.6 : 1.1;
    for (const n of NODE_COUNTS) {
      const r = at(s, n);
      const worst = Math.max(r.movedOnAddRatio, r.movedOnRemoveRatio);
      goal(`${s} moved ≤ ${limit} × ideal at ${n} nodes`, `add ${r.movedOnAddRatio}, remove ${r.movedOnRemoveRatio}`, worst <= limit);
    }
  }
  return rows;
}

await main();
