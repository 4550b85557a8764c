/**
 * @ballast/circuit-breaker benchmarks (`npm run bench:circuit-breaker`).
 *
 * Cost per call through a closed breaker, for a call that succeeds and for one that
 * fails, as the number of calls already in the breaker's rolling window grows from
 * 1,000 to 100,000; the cost of a rejection while open; the heap a full window holds.
 * Side by side in one run: a bare call, Ballast (defaults, and without a timeout, as
 * cockatiel's breaker has none), raw opossum at its defaults, and cockatiel (SamplingBreaker over a 10 s window, its closest match).
 * Overhead = candidate minus bare call, measured in the same run.
 */
import { createRequire } from 'node:module';
import { CircuitBreaker, type OpossumBreaker } from '@ballast/circuit-breaker';
import { circuitBreaker as cockatielBreaker, handleAll, SamplingBreaker } from 'cockatiel';
import { importBaseline } from '../lib/baseline.ts';
import { publishFigures } from '../lib/figures.ts';
import { type IsolatedResult, interleavedIsolated } from '../lib/isolated.ts';
import { heapUsed, loadAverage } from '../lib/measure.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import {
  available,
  BALLAST_FAIL,
  BALLAST_UNTIMED,
  BALLAST_UNTIMED_FAIL,
  BARE_FAIL,
  BEFORE_FAIL,
  FAILURE,
  SUCCESS,
  BARE as SUCCESS_BARE,
  TODAY_FAIL,
} from './contenders.ts';

// opossum ships no types: load it untyped and describe it with Ballast's own description of it.
const Opossum = createRequire(import.meta.url)('opossum') as new (action: (failing: boolean) => Promise<unknown>) => OpossumBreaker;

const WINDOWS = [1_000, 10_000, 100_000];
const LOAD = loadAverage();
const BATCH = 20; // calls per timed batch
const BUDGET_MS = Number(process.env.BUDGET_MS ?? 1_500); // time limit per measurement

const value = { ok: true };
const failure = new Error('upstream failed'); // built once: the bench times breakers, not stack capture
const succeed = (): Promise<typeof value> => Promise.resolve(value);
const fail = (): Promise<never> => Promise.reject(failure);
const swallow = (): undefined => undefined;

interface Candidate {
  name: string;
  /** Runs one successful call through the breaker. */
  ok(): Promise<unknown>;
  /** Runs one failing call through the breaker (resolves once it has been counted). */
  fail(): Promise<unknown>;
  open(): void;
  close(): void;
}

function bare(): Candidate {
  return { name: 'bare call', ok: succeed, fail: () => fail().catch(swallow), open() {}, close() {} };
}

function ballast(timeoutMs: number | false, name: string): () => Candidate {
  return () => {
    // Never opens on the failure rate (>100% is impossible), so the window keeps filling.
    const breaker = new CircuitBreaker({ name: 'bench', timeoutMs, opossum: { errorThresholdPercentage: 100 } });
    return {
      name,
      ok: () => breaker.execute(succeed),
      fail: () => breaker.execute(fail).catch(swallow),
      open: () => breaker.trip(),
      close: () => breaker.dispose(),
    };
  };
}

/** The breaker as it was before the policy contract (the baseline commit), same options. */
interface OldBreakerModule {
  CircuitBreaker: new (
    options: object,
  ) => {
    execute(fn: () => Promise<unknown>): Promise<unknown>;
    trip(): void;
    close(): void;
  };
}
const old = await importBaseline<OldBreakerModule>('circuit-breaker');
const BEFORE = 'Ballast before';
function before(): Candidate {
  const OldBreaker = (old as OldBreakerModule).CircuitBreaker;
  const breaker = new OldBreaker({ name: 'bench', errorThresholdPercentage: 100, timeout: 10_000 });
  return {
    name: BEFORE,
    ok: () => breaker.execute(succeed),
    fail: () => breaker.execute(fail).catch(swallow),
    open: () => breaker.trip(),
    close: () => breaker.close(),
  };
}

function opossum(): Candidate {
  // opossum at its defaults (10 s window, percentiles on, 10 s timeout); the windows
  // measured keep the failure rate under its 50% threshold.
  const breaker = new Opossum((failing: boolean) => (failing ? fail() : succeed()));
  return {
    name: 'opossum (defaults)',
    ok: () => breaker.fire(false),
    fail: () => breaker.fire(true).catch(swallow),
    open: () => breaker.open(),
    close: () => breaker.shutdown(),
  };
}

function cockatiel(): Candidate {
  const policy = cockatielBreaker(handleAll, {
    halfOpenAfter: 30_000,
    breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }),
  });
  let isolation: { dispose(): void } | undefined;
  return {
    name: 'cockatiel',
    ok: () => policy.execute(succeed),
    fail: () => policy.execute(fail).catch(swallow),
    open: () => {
      isolation = policy.isolate();
    },
    close: () => isolation?.dispose(),
  };
}

/**
 * Median ns per call over batches of BATCH sequential calls, stopping after `calls`
 * calls or BUDGET_MS, whichever comes first.
 */
async function timeCalls(op: () => Promise<unknown>, calls: number): Promise<{ ns: number; calls: number }> {
  const batches: number[] = [];
  const deadline = performance.now() + BUDGET_MS;
  let done = 0;
  while (done < calls && (batches.length < 3 || performance.now() < deadline)) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < BATCH; i++) await op();
    batches.push(Number(process.hrtime.bigint() - start) / BATCH);
    done += BATCH;
  }
  batches.sort((a, b) => a - b);
  return { ns: batches[Math.floor(batches.length / 2)] as number, calls: done };
}

/** Fills the window with `n` successful calls (the failure rate stays low for every breaker). */
async function prefill(candidate: Candidate, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await candidate.ok();
}

const factories = [bare, ballast(10_000, 'Ballast'), ballast(false, 'Ballast, no timeout'), ...(old ? [before] : []), opossum, cockatiel];
const results: Row[] = [];

// Warm every code path once so the first window does not pay for compilation.
for (const make of factories) {
  const c = make();
  await prefill(c, 5_000);
  for (let i = 0; i < 2_000; i++) await c.fail();
  c.close();
}

for (const window of WINDOWS) {
  const measured = Math.min(2_000, Math.floor(window / 4)); // keeps failures under 50% of the window
  const row: Row = { 'calls in window': window };
  const base: Record<'ok' | 'fail', number> = { ok: 0, fail: 0 };
  for (const make of factories) {
    const c = make();
    await prefill(c, window);
    const ok = await timeCalls(() => c.ok(), measured);
    const failed = await timeCalls(() => c.fail(), measured);
    c.close();
    if (c.name === 'bare call') {
      base.ok = ok.ns;
      base.fail = failed.ns;
      row['bare ok ns'] = ok.ns;
      row['bare fail ns'] = failed.ns;
      continue;
    }
    row[`${c.name} ok µs`] = (ok.ns - base.ok) / 1_000;
    row[`${c.name} fail µs`] = (failed.ns - base.fail) / 1_000;
  }
  results.push(row);
  console.log(`window ${window}: done`);
}

// Rejections while open.
const rejections: Row[] = [];
for (const make of factories.slice(1)) {
  const c = make();
  c.open();
  await timeCalls(() => c.ok().catch(swallow), 5_000);
  const { ns } = await timeCalls(() => c.ok().catch(swallow), 20_000);
  c.close();
  rejections.push({ breaker: c.name, 'rejection µs': ns / 1_000 });
}

// Heap held by a full window of 100,000 successful calls, each breaker measured on its own.
async function heapOf(make: () => Candidate): Promise<Row> {
  const before = heapUsed();
  const c = make();
  await prefill(c, 100_000);
  const after = heapUsed();
  c.close();
  return { breaker: c.name, 'heap for 100k calls in window (KB)': Math.round((after - before) / 1024) };
}
const heap: Row[] = [];
for (const make of factories.slice(1)) heap.push(await heapOf(make));
heapUsed();

// The success path alone, and the failure path, in CPU time per call: each contender in a
// process of its own, in interleaved rounds (load from other processes falls on every
// contender alike), with heap bytes allocated per call; and opossum's share: the same
// Ballast breaker with every call sent through opossum's fire().
const SUCCESS_ROUNDS = Number(process.env.ROUNDS ?? 21);
const contenders = new URL('./contenders.ts', import.meta.url).href;
const successTimes = await interleavedIsolated(contenders, available(SUCCESS), { iterations: 10_000, rounds: SUCCESS_ROUNDS });
const failureTimes = await interleavedIsolated(contenders, available(FAILURE), { iterations: 5_000, rounds: SUCCESS_ROUNDS });
const perCallRows = (times: Map<string, IsolatedResult>, bareName: string): Row[] => {
  const bareCpu = times.get(bareName)?.cpuNs ?? 0;
  const bareBytes = times.get(bareName)?.bytes ?? 0;
  return [...times].map(([name, t]) => ({
    breaker: name,
    'CPU ns/call': t.cpuNs,
    'overhead µs': (t.cpuNs - bareCpu) / 1_000,
    'bytes/call over bare': t.bytes - bareBytes,
  }));
};
const successRows = perCallRows(successTimes, SUCCESS_BARE);
const failureRows = perCallRows(failureTimes, BARE_FAIL);
const overheadOf = (name: string): number => [...successRows, ...failureRows].find((r) => r.breaker === name)?.['overhead µs'] as number;

const columns = [
  'calls in window',
  'bare ok ns',
  'bare fail ns',
  ...['Ballast', 'Ballast, no timeout', ...(old ? [BEFORE] : []), 'opossum (defaults)', 'cockatiel'].flatMap((n) => [
    `${n} ok µs`,
    `${n} fail µs`,
  ]),
];
printTable('Overhead per call over a bare call (µs), by calls already in the window', results, columns);
printTable('Rejection while open (µs per call)', rejections);
printTable('Heap held by the window', heap);
printTable('Success path: CPU time per call over a bare call, and heap bytes allocated per call', successRows);
printTable('Failure path: CPU time per failed call over a bare failed call, and heap bytes allocated per call', failureRows);

const ballastOk = results.map((r) => r['Ballast ok µs'] as number);
const ballastFail = results.map((r) => r['Ballast fail µs'] as number);
const goals = {
  okWorstUs: Math.max(...ballastOk),
  failWorstUs: Math.max(...ballastFail),
  okGoalMet: Math.max(...ballastOk) <= 2,
  failGoalMet: Math.max(...ballastFail) <= 5,
  failGrowth1kTo100k: (ballastFail.at(-1) as number) / (ballastFail[0] as number),
  opossumFailGrowth1kTo100k:
    (results.at(-1)?.['opossum (defaults) fail µs'] as number) / (results[0]?.['opossum (defaults) fail µs'] as number),
  successOverheadUs: overheadOf('Ballast'),
  successOverheadNoTimeoutUs: overheadOf('Ballast, no timeout'),
  successOverheadUntimedUs: overheadOf(BALLAST_UNTIMED),
  cockatielSuccessOverheadUs: overheadOf('cockatiel'),
  successVsCockatiel: overheadOf(BALLAST_UNTIMED) / overheadOf('cockatiel'),
  successWithHistogramVsCockatiel: overheadOf('Ballast, no timeout') / overheadOf('cockatiel'),
  successVsBefore: old ? overheadOf('Ballast') / overheadOf(BEFORE) : null,
  failVsBefore: old ? Math.max(...ballastFail) / Math.max(...results.map((r) => r[`${BEFORE} fail µs`] as number)) : null,
  opossumFireShareUs: overheadOf('Ballast, every call through opossum fire()') - overheadOf('Ballast'),
  failedCallUs: overheadOf(BALLAST_FAIL),
  failedCallUntimedUs: overheadOf(BALLAST_UNTIMED_FAIL),
  failedCallTodayUs: overheadOf(TODAY_FAIL) ?? null,
  failedCallVsToday: overheadOf(BALLAST_FAIL) / overheadOf(TODAY_FAIL),
  failedCallBeforeUs: overheadOf(BEFORE_FAIL) ?? null,
};
console.log('\nGoals:', goals);
const END = loadAverage();

const markdown = [
  '# @ballast/circuit-breaker benchmark',
  '',
  `\`npm run bench:circuit-breaker\` — ${machine().cpus} CPUs (${machine().cpuModel}), Node ${machine().node}, load average ${LOAD.join(' ')} at the start and ${END.join(' ')} at the end, ${machine().date}`,
  '',
  '## Overhead per call over a bare call (µs), by calls already in the rolling window',
  '',
  markdownTable(results, columns),
  '',
  '## Rejection while open (µs per call)',
  '',
  markdownTable(rejections),
  '',
  '## Heap held by a window of 100,000 calls',
  '',
  markdownTable(heap),
  '',
  `## Success path: CPU time per call over a bare call (each contender in a process of its own, median of ${SUCCESS_ROUNDS} interleaved rounds of 10,000 calls), and heap bytes allocated per call`,
  '',
  markdownTable(successRows),
  '',
  `## Failure path: CPU time per failed call over a bare failed call (same method, rounds of 5,000 calls; no breaker opens), and heap bytes allocated per call`,
  '',
  markdownTable(failureRows),
  '',
  `Ballast worst case: ${fmt(goals.okWorstUs)} µs per successful call (goal ≤ 2), ${fmt(goals.failWorstUs)} µs per failed call (goal ≤ 5); failed-call cost ×${fmt(goals.failGrowth1kTo100k)} from 1k to 100k calls in the window (opossum at its defaults: ×${fmt(goals.opossumFailGrowth1kTo100k)}).`,
  '',
  `Success path (CPU): Ballast ${fmt(goals.successOverheadUs)} µs, without a timeout ${fmt(goals.successOverheadNoTimeoutUs)} µs (×${fmt(goals.successWithHistogramVsCockatiel)} cockatiel's), without a timeout and latency histogram (no clock reading, what cockatiel's breaker does) ${fmt(goals.successOverheadUntimedUs)} µs, cockatiel ${fmt(goals.cockatielSuccessOverheadUs)} µs (ratio ${fmt(goals.successVsCockatiel)}, goal ≤ 1); vs before the contract ×${fmt(goals.successVsBefore)} (goal ≤ 1.1); worst failed call vs before ×${fmt(goals.failVsBefore)} (goal ≤ 1); opossum's fire() adds ${fmt(goals.opossumFireShareUs)} µs per successful call when Ballast sends calls through it. Failed call (CPU): ${fmt(goals.failedCallUs)} µs, before the hot-path work ${fmt(goals.failedCallTodayUs)} µs (×${fmt(goals.failedCallVsToday)}, goal ≤ 1), before the contract ${fmt(goals.failedCallBeforeUs)} µs.`,
  '',
].join('\n');
writeResult('circuit-breaker.md', markdown);
writeResult('circuit-breaker.json', {
  machine: { ...machine(), loadAverage: LOAD, loadAverageAtEnd: END },
  results,
  rejections,
  heap,
  success: successRows,
  failure: failureRows,
  goals,
});
await publishFigures('circuit-breaker');
