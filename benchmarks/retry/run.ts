/**
 * @ballast/retry benchmarks (`npm run bench:retry`).
 *
 * 1. Retry storm: clients call an upstream that fails every request, on an open-loop
 *    schedule at a fixed base rate, with no retries, with retries and no budget, and with
 *    retries under each default budget, side by side in one run. Reported: upstream load
 *    as a multiple of the base rate, over the whole run and in the steady state.
 * 2. Hedged requests over two replicas with a slow tail, without and with hedging.
 * 3. Overhead per call that succeeds on its first attempt, next to raw p-retry and
 *    cockatiel's retry, measured in the same run.
 */
import { type RetryBudget, RetryPolicy, ratioBudget, tokenBucketBudget } from '@ballast/retry';
import { publishFigures } from '../lib/figures.ts';
import { interleavedIsolated } from '../lib/isolated.ts';
import { loadAverage } from '../lib/measure.ts';
import { openLoop } from '../lib/open-loop.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import {
  availableNames,
  BALLAST_DEFAULTS,
  BALLAST_FAIL_ONCE,
  BEFORE,
  BEFORE_FAIL_ONCE,
  COCKATIEL,
  P_RETRY,
  RAW,
  TODAY_FAIL_ONCE,
} from './contenders.ts';

const BASE_RATE = Number(process.env.RATE ?? 400); // calls per second
const DURATION_MS = Number(process.env.DURATION_MS ?? 5_000);
const STEADY_FROM_MS = 2_000; // skip the start, when budgets still hold their initial allowance
const MAX_ATTEMPTS = 3;
const OVERHEAD_ITERATIONS = Number(process.env.ITERATIONS ?? 20_000);
const OVERHEAD_ROUNDS = Number(process.env.ROUNDS ?? 21);

/** An upstream that fails every request after 2 ms, recording when each request arrived. */
function failingUpstream() {
  const arrivals: number[] = [];
  const start = performance.now();
  const call = (signal: AbortSignal): Promise<never> => {
    arrivals.push(performance.now() - start);
    return new Promise((_resolve, reject) => {
      const timer = setTimeout(() => reject(Object.assign(new Error('503 Service Unavailable'), { status: 503 })), 2);
      signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
    });
  };
  return { call, arrivals };
}

/** Two replicas answering in 5 ms, except 5% of requests that take 150 ms (a GC pause, a slow disk). */
function slowTailReplica() {
  let requests = 0;
  const call = (signal: AbortSignal): Promise<string> => {
    requests++;
    const ms = Math.random() < 0.05 ? 150 : 5;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve('ok'), ms);
      signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  };
  return { call, requests: () => requests };
}

async function hedging(name: string, hedgeDelayMs: number | undefined): Promise<Row> {
  const replicas = [slowTailReplica(), slowTailReplica()];
  const budget = ratioBudget({ ratio: 0.1 });
  const policy = new RetryPolicy<string>({ maxAttempts: 2, hedgeDelayMs: hedgeDelayMs ?? 0, budget });
  const call = ({ attempt, signal }: { attempt: number; signal: AbortSignal }): Promise<string> =>
    (replicas[(attempt - 1) % 2] as ReturnType<typeof slowTailReplica>).call(signal);
  const result = await openLoop(
    async () => {
      await (hedgeDelayMs === undefined ? call({ attempt: 1, signal: new AbortController().signal }) : policy.hedge(call));
      return { status: 200 };
    },
    { ratePerSec: 200, durationMs: 3_000 },
  );
  const sent = replicas.reduce((n, r) => n + r.requests(), 0);
  policy.close();
  return {
    scenario: name,
    calls: result.sent,
    'p50 ms': result.latency.p50,
    'p99 ms': result.latency.p99,
    'p99.9 ms': result.latency.p999,
    'extra load %': (sent / result.sent - 1) * 100,
  };
}

async function storm(name: string, budget: RetryBudget | undefined, attempts: number): Promise<Row> {
  const upstream = failingUpstream();
  const policy = new RetryPolicy({ maxAttempts: attempts, budget });
  const result = await openLoop(
    async () => {
      await policy.execute(({ signal }) => upstream.call(signal)).catch(() => {});
      return { status: 'done' };
    },
    { ratePerSec: BASE_RATE, durationMs: DURATION_MS },
  );
  const steady = upstream.arrivals.filter((t) => t >= STEADY_FROM_MS && t < DURATION_MS).length;
  const steadyBase = ((DURATION_MS - STEADY_FROM_MS) / 1000) * BASE_RATE;
  const stats = policy.stats();
  policy.close();
  budget?.close();
  return {
    scenario: name,
    calls: result.sent,
    'upstream requests': upstream.arrivals.length,
    'load (x base)': upstream.arrivals.length / result.sent,
    'extra load %': (upstream.arrivals.length / result.sent - 1) * 100,
    'steady load (x base)': steady / steadyBase,
    'retries refused': stats.budgetExhausted,
  };
}

async function overhead(): Promise<Row[]> {
  const results = await interleavedIsolated(new URL('./contenders.ts', import.meta.url).href, availableNames(), {
    iterations: OVERHEAD_ITERATIONS,
    rounds: OVERHEAD_ROUNDS,
  });
  const raw = results.get(RAW)?.cpuNs ?? 0;
  const rawBytes = results.get(RAW)?.bytes ?? 0;
  return [...results].map(([candidate, { cpuNs, wallNs, bytes }]) => ({
    candidate,
    'CPU ns/call': cpuNs,
    'overhead µs': (cpuNs - raw) / 1000,
    'wall ns/call': wallNs,
    'bytes/call over raw': bytes - rawBytes,
  }));
}

const LOAD = loadAverage();

async function main(): Promise<void> {
  console.log(`@ballast/retry benchmarks — ${JSON.stringify(machine())}`);
  console.log(
    `Retry storm: ${BASE_RATE} calls/s for ${DURATION_MS} ms against an upstream failing 100% of requests, maxAttempts ${MAX_ATTEMPTS}`,
  );
  const stormRows = [
    await storm('no retries', undefined, 1),
    await storm('retries, no budget', undefined, MAX_ATTEMPTS),
    await storm('retries, ratioBudget() (20%, min 10/s)', ratioBudget(), MAX_ATTEMPTS),
    await storm('retries, tokenBucketBudget() (gRPC)', tokenBucketBudget(), MAX_ATTEMPTS),
  ];
  const hedgeRows = [await hedging('no hedging', undefined), await hedging('hedge after 20 ms, ratioBudget({ ratio: 0.1 })', 20)];
  printTable('Hedged requests: 200 calls/s, 2 replicas, 5% of requests 150 ms instead of 5 ms', hedgeRows);

  // Let the storm's garbage and timers settle before timing nanoseconds.
  (globalThis as { gc?: () => void }).gc?.();
  await new Promise((resolve) => setTimeout(resolve, 200));
  printTable('Retry storm (upstream load relative to the base rate)', stormRows);

  const overheadRows = await overhead();
  printTable('Overhead per call succeeding on the first attempt', overheadRows);

  const noBudget = stormRows[1]?.['load (x base)'] as number;
  const ratio = stormRows[2]?.['extra load %'] as number;
  const overheadOf = (name: string): number => overheadRows.find((r) => r.candidate === name)?.['overhead µs'] as number;
  const ballastOverhead = overheadOf(BALLAST_DEFAULTS);
  const fastestPeer = Math.min(overheadOf(P_RETRY), overheadOf(COCKATIEL));
  const before = overheadOf(BEFORE);
  const failNow = overheadOf(BALLAST_FAIL_ONCE);
  const failToday = overheadOf(TODAY_FAIL_ONCE);
  const failBefore = overheadOf(BEFORE_FAIL_ONCE);
  const goals = [
    `retries without a budget reach maxAttempts x base: ${noBudget.toFixed(2)}x (goal ${MAX_ATTEMPTS}x) ${Math.abs(noBudget - MAX_ATTEMPTS) < 0.05 ? 'MET' : 'MISSED'}`,
    `extra load under the default ratioBudget(): ${ratio.toFixed(1)}% (goal <= 20%) ${ratio <= 20 ? 'MET' : 'MISSED'}`,
    `overhead per first-attempt success: ${ballastOverhead.toFixed(2)} µs (goal <= 2 µs) ${ballastOverhead <= 2 ? 'MET' : 'MISSED'}`,
    `overhead vs the fastest peer (${fastestPeer.toFixed(3)} µs): ${fmt(ballastOverhead / fastestPeer)}x (goal <= 1) ${ballastOverhead <= fastestPeer ? 'MET' : 'MISSED'}`,
    ...(Number.isFinite(before)
      ? [
          `overhead vs before the contract (${before.toFixed(2)} µs, same run): ${fmt(ballastOverhead / before)}x (goal <= 1.1) ${ballastOverhead <= before * 1.1 ? 'MET' : 'MISSED'}`,
        ]
      : []),
    ...(Number.isFinite(failToday)
      ? [
          `failure path (an error not retried): ${failNow.toFixed(2)} µs, before the hot-path work ${failToday.toFixed(2)} µs: ${fmt(failNow / failToday)}x (goal <= 1) ${failNow <= failToday ? 'MET' : 'MISSED'}${Number.isFinite(failBefore) ? `; before the contract ${failBefore.toFixed(2)} µs` : ''}`,
        ]
      : []),
  ];
  console.log(`\nGoals:\n${goals.map((g) => `- ${g}`).join('\n')}`);

  const markdown = [
    `Retry storm: ${BASE_RATE} calls/s for ${DURATION_MS / 1000} s, upstream failing 100%, maxAttempts ${MAX_ATTEMPTS}, steady state from ${STEADY_FROM_MS / 1000} s.`,
    '',
    markdownTable(stormRows),
    '',
    'Hedged requests: 200 calls/s for 3 s over 2 replicas; 5% of requests take 150 ms instead of 5 ms:',
    '',
    markdownTable(hedgeRows),
    '',
    `Overhead per call succeeding on the first attempt (and, last rows, per call whose first attempt fails with an error that is not retried): each contender in a process of its own, CPU time per call of that process, median of ${OVERHEAD_ROUNDS} interleaved rounds of ${OVERHEAD_ITERATIONS.toLocaleString('en-US')} calls; overhead = CPU time minus the raw operation's; heap bytes allocated per call over the raw operation's:`,
    '',
    markdownTable(overheadRows),
    '',
    ...goals.map((g) => `- ${g}`),
  ].join('\n');
  console.log(`\n${markdown}`);
  const end = loadAverage();
  writeResult(
    'retry.md',
    `# @ballast/retry benchmark\n\n\`npm run bench:retry\` — ${machine().cpuModel} × ${machine().cpus}, Node ${machine().node}, load average ${LOAD.join(' ')} at the start and ${end.join(' ')} at the end, ${machine().date}.\n\n${markdown}\n`,
  );
  const path = writeResult('retry.json', {
    machine: { ...machine(), loadAverage: LOAD, loadAverageAtEnd: end },
    baseRate: BASE_RATE,
    durationMs: DURATION_MS,
    storm: stormRows,
    hedging: hedgeRows,
    overhead: overheadRows,
  });
  console.log(`\nwrote ${path}`);
  await publishFigures('retry');
}

await main();
