/**
 * Cost of one pick() + done() for every strategy of @ballast/load-balancer, idle and
 * with 64 requests in flight, at 100 endpoints (the goals) and at 10, 100 and 1,000
 * endpoints (scaling), measured in one run so the figures compare. Goals (issue): ≤ 300 ns for round robin, P2C and least connections,
 * ≤ 1 µs for peak-EWMA, at 100 endpoints.
 *
 * Run: npm run bench:load-balancer
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Clock } from '@ballast/common';
import { LoadBalancer, type PickHandle, STRATEGY_NAMES, type Strategy, type StrategyName, strategyByName } from '@ballast/load-balancer';
import { median, timeBatch } from '../lib/measure.ts';
import { machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const SIZES = [10, 100, 1_000];
const IN_FLIGHT = 64;
const ITERATIONS = 200_000;
const SAMPLES = 9;

/** Every built-in strategy at its defaults; the goals are the issue's, at 100 endpoints. */
const GOALS_NS: Partial<Record<StrategyName, number>> = { 'round-robin': 300, 'least-connections': 300, p2c: 300, 'peak-ewma': 1_000 };
const strategies: Array<{ name: StrategyName; make: () => Strategy; keyed?: boolean; goalNs?: number }> = STRATEGY_NAMES.map((name) => ({
  name,
  make: () => strategyByName(name),
  keyed: name.startsWith('hash-'),
  goalNs: GOALS_NS[name],
}));

const keys = Array.from({ length: 4_096 }, (_, i) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);

/** Advances 1 µs per read: the balancer's own cost, without the system clock's. */
function counterClock(): Clock {
  let t = 0;
  return { now: () => (t += 0.001) };
}

function balancer(strategy: Strategy, size: number, options: { weighted?: boolean; clock?: Clock } = {}): LoadBalancer {
  return new LoadBalancer({
    strategy,
    clock: options.clock,
    endpoints: Array.from({ length: size }, (_, i) => ({
      id: `e${i}`,
      address: `http://10.0.${i >> 8}.${i & 255}:8080`,
      weight: options.weighted ? 1 + (i % 3) : 1,
    })),
  });
}

type Loop = (from: number, count: number) => void;

/**
 * Compiles the measured loop afresh for every measurement, so its call sites see one
 * balancer and one strategy (as in a service, which runs one strategy) instead of every
 * strategy measured before it.
 * - idle: pick() then done() at once, nothing else in flight;
 * - loaded: pick() a new request and done() the oldest of `IN_FLIGHT` outstanding ones.
 */
function compile(lb: LoadBalancer, mode: 'idle' | 'loaded', keyed: boolean): Loop {
  const pick = keyed ? 'lb.pick({ key: keys[i & 4095] })' : 'lb.pick()';
  const ring: PickHandle[] = [];
  if (mode === 'loaded') for (let i = 0; i < IN_FLIGHT; i++) ring.push(keyed ? lb.pick({ key: keys[i] as string }) : lb.pick());
  const body =
    mode === 'idle'
      ? `for (let i = from; i < from + count; i++) ${pick}.done({ ok: true });`
      : `for (let i = from; i < from + count; i++) { const slot = i % ${IN_FLIGHT}; ring[slot].done({ ok: true }); ring[slot] = ${pick}; }`;
  const loop = new Function('lb', 'ring', 'keys', 'from', 'count', body) as (
    lb: LoadBalancer,
    ring: PickHandle[],
    k: string[],
    from: number,
    count: number,
  ) => void;
  return (from, count) => loop(lb, ring, keys, from, count);
}

interface Timing {
  /** Median CPU nanoseconds per operation: time spent waiting for a core on a shared machine is not counted. */
  cpuNs: number;
  /** Median wall-clock nanoseconds per operation. */
  wallNs: number;
}

/**
 * Times `op` in CPU time (process.cpuUsage), median of `SAMPLES` batches sized to about
 * 40 ms each, after a warm-up. CPU time rather than wall time, because the machine is
 * shared: while another process holds the core, no request is being balanced.
 */
function cpuTime(loop: Loop): Timing {
  let i = 0;
  const warmStart = performance.now();
  while (i < 20_000 || performance.now() - warmStart < 100) {
    loop(i, 1_000);
    i += 1_000;
  }
  const perOpMs = (performance.now() - warmStart) / i;
  const batch = Math.max(1_000, Math.min(ITERATIONS, Math.round(40 / perOpMs)));
  const cpu: number[] = [];
  const wall: number[] = [];
  for (let s = 0; s < SAMPLES; s++) {
    const from = i;
    const t = timeBatch(() => loop(from, batch));
    i += batch;
    cpu.push(t.cpuNs / batch);
    wall.push(t.wallNs / batch);
  }
  return { cpuNs: median(cpu), wallNs: median(wall) };
}

function time(
  s: (typeof strategies)[number],
  size: number,
  mode: 'idle' | 'loaded',
  options: { weighted?: boolean; clock?: Clock } = {},
): Timing {
  const lb = balancer(s.make(), size, options);
  const timing = cpuTime(compile(lb, mode, s.keyed === true));
  lb.close();
  return timing;
}

/** Everything measured for one strategy, in a process of its own so no other strategy shares its call sites. */
interface StrategyResult {
  strategy: string;
  idle: Timing;
  loaded: Timing;
  ownCost: Timing;
  scaling: Record<string, Timing>;
}

function measureStrategy(s: (typeof strategies)[number]): StrategyResult {
  const idleTiming = time(s, 100, 'idle');
  const loadedTiming = time(s, 100, 'loaded');
  const scaling: Record<string, Timing> = {};
  for (const size of SIZES) scaling[size] = time(s, size, 'loaded', { weighted: true });
  // Last, so the counter clock does not make the system clock's call site polymorphic earlier.
  const ownCost = time(s, 100, 'idle', { clock: counterClock() });
  return { strategy: s.name, idle: idleTiming, loaded: loadedTiming, ownCost, scaling };
}

const only = process.argv.find((a) => a.startsWith('--strategy='))?.slice('--strategy='.length);
if (only !== undefined) {
  const s = strategies.find((x) => x.name === only);
  if (!s) throw new Error(`unknown strategy ${only}`);
  process.stdout.write(JSON.stringify(measureStrategy(s)));
} else {
  const clock = cpuTime((from, count) => {
    for (let i = from; i < from + count; i++) performance.now();
  });
  const results: StrategyResult[] = [];
  for (const s of strategies) {
    process.stderr.write(`measuring ${s.name}…\n`);
    const out = execFileSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), `--strategy=${s.name}`], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    results.push(JSON.parse(out) as StrategyResult);
  }
  const goals: Row[] = results.map((r, i) => {
    const goalNs = strategies[i]?.goalNs;
    const worst = Math.max(r.idle.cpuNs, r.loaded.cpuNs);
    return {
      strategy: r.strategy,
      'idle (ns)': r.idle.cpuNs,
      [`${IN_FLIGHT} in flight (ns)`]: r.loaded.cpuNs,
      'idle, without clock reads (ns)': r.ownCost.cpuNs,
      goal: goalNs === undefined ? '—' : `≤ ${goalNs} ns`,
      met: goalNs === undefined ? '—' : worst <= goalNs ? 'yes' : 'no',
    };
  });
  const scaling: Row[] = results.map((r) => {
    const row: Row = { strategy: r.strategy };
    for (const size of SIZES) row[`${size} endpoints (ns)`] = r.scaling[size]?.cpuNs;
    return row;
  });
  const info = machine();
  const goalColumns = ['strategy', 'idle (ns)', `${IN_FLIGHT} in flight (ns)`, 'idle, without clock reads (ns)', 'goal', 'met'];
  const scalingColumns = ['strategy', ...SIZES.map((n) => `${n} endpoints (ns)`)];
  printTable('pick() + done({ ok: true }) at 100 endpoints, equal weights: median CPU ns per request', goals, goalColumns);
  printTable(`pick() + done() with ${IN_FLIGHT} in flight, weights 1–3: median CPU ns per request`, scaling, scalingColumns);
  console.log(`\nOne performance.now() read: ${clock.cpuNs.toFixed(0)} ns; pick() and done() read the clock once each.`);
  console.log(`${info.cpuModel} × ${info.cpus}, Node ${info.node}, one process per strategy.`);
  const markdown = [
    `pick() + done({ ok: true }) at 100 endpoints, equal weights, median CPU ns per request:`,
    '',
    markdownTable(goals, goalColumns),
    '',
    `With ${IN_FLIGHT} requests in flight and weights 1–3, by number of endpoints:`,
    '',
    markdownTable(scaling, scalingColumns),
    '',
    `One \`performance.now()\` read costs ${clock.cpuNs.toFixed(0)} ns here; \`pick()\` and \`done()\` read the clock once each. ${info.cpuModel} × ${info.cpus}, Node ${info.node}, one process per strategy.`,
  ].join('\n');
  console.log(`\n${markdown}`);
  writeResult('load-balancer.md', `${markdown}\n`);
  writeResult('load-balancer.json', { machine: info, clockReadNs: clock, inFlight: IN_FLIGHT, results });
}
