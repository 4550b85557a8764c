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
import { constantBackoff, type RetryBudget, RetryPolicy, ratioBudget, retry, tokenBucketBudget } from '@ballast/retry';
import { retry as cockatielRetry, ExponentialBackoff, handleAll } from 'cockatiel';
import pRetry from 'p-retry';
import { median, timeBatchAsync } from '../lib/measure.ts';
import { openLoop } from '../lib/open-loop.ts';
import { machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const BASE_RATE = Number(process.env.RATE ?? 400); // calls per second
const DURATION_MS = Number(process.env.DURATION_MS ?? 5_000);
const STEADY_FROM_MS = 2_000; // skip the start, when budgets still hold their initial allowance
const MAX_ATTEMPTS = 3;

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

/**
 * Times async candidates in interleaved rounds: every round runs each candidate once (in
 * a rotating order), so load from other processes falls on all of them alike; the median
 * round is reported. On a shared machine wall time mostly measures the other tenants, so
 * the figure is the CPU time this process spends per call (`process.cpuUsage`, user +
 * system, GC included); the wall-clock median is kept beside it.
 */
async function interleaved(
  candidates: Array<[name: string, op: () => Promise<unknown>]>,
  { iterations = 20_000, rounds = 11 } = {},
): Promise<Map<string, { cpu: number; wall: number }>> {
  const cpu = new Map<string, number[]>(candidates.map(([name]) => [name, []]));
  const wall = new Map<string, number[]>(candidates.map(([name]) => [name, []]));
  for (const [, op] of candidates) for (let i = 0; i < iterations; i++) await op();
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < candidates.length; k++) {
      const [name, op] = candidates[(k + round) % candidates.length] as [string, () => Promise<unknown>];
      const t = await timeBatchAsync(async () => {
        for (let i = 0; i < iterations; i++) await op();
      });
      wall.get(name)?.push(t.wallNs / iterations);
      cpu.get(name)?.push(t.cpuNs / iterations);
    }
  }
  return new Map(candidates.map(([name]) => [name, { cpu: median(cpu.get(name) ?? []), wall: median(wall.get(name) ?? []) }]));
}

const RAW = 'raw operation (no retry)';
const BALLAST_DEFAULTS = 'Ballast RetryPolicy.execute (defaults: 3 attempts, 30 s deadline)';

async function overhead(): Promise<Row[]> {
  const op = async (): Promise<number> => 1;
  const opWithSignal = async ({ signal }: { signal: AbortSignal }): Promise<number> => (signal.aborted ? 0 : 1);
  const cockatiel = cockatielRetry(handleAll, { maxAttempts: MAX_ATTEMPTS - 1, backoff: new ExponentialBackoff() });
  const ballast = new RetryPolicy();
  const ballastFull = new RetryPolicy({ timeoutMs: 1_000, budget: ratioBudget() });
  const signal = new AbortController().signal;
  const backoff = constantBackoff({ delayMs: 100 });

  const results = await interleaved([
    [RAW, () => op()],
    ['p-retry 9 (retries: 2)', () => pRetry(op, { retries: MAX_ATTEMPTS - 1 })],
    ['cockatiel 3 retry (maxAttempts: 2)', () => cockatiel.execute(op)],
    [BALLAST_DEFAULTS, () => ballast.execute(op)],
    ['Ballast execute, operation reads its signal', () => ballast.execute(opWithSignal)],
    ['Ballast execute + timeoutMs + caller signal + ratio budget', () => ballastFull.execute(opWithSignal, { signal })],
    ['Ballast retry() one-shot (builds a policy per call)', () => retry(op, { backoff })],
  ]);
  ballast.close();
  ballastFull.close();
  const raw = results.get(RAW)?.cpu ?? 0;
  return [...results].map(([candidate, { cpu, wall }]) => ({
    candidate,
    'CPU ns/call': cpu,
    'overhead µs': (cpu - raw) / 1000,
    'wall ns/call': wall,
  }));
}

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
  const ballastOverhead = overheadRows.find((r) => r.candidate === BALLAST_DEFAULTS)?.['overhead µs'] as number;
  const goals = [
    `retries without a budget reach maxAttempts x base: ${noBudget.toFixed(2)}x (goal ${MAX_ATTEMPTS}x) ${Math.abs(noBudget - MAX_ATTEMPTS) < 0.05 ? 'MET' : 'MISSED'}`,
    `extra load under the default ratioBudget(): ${ratio.toFixed(1)}% (goal <= 20%) ${ratio <= 20 ? 'MET' : 'MISSED'}`,
    `overhead per first-attempt success: ${ballastOverhead.toFixed(2)} µs (goal <= 2 µs) ${ballastOverhead <= 2 ? 'MET' : 'MISSED'}`,
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
    "Overhead per call succeeding on the first attempt: CPU time per call, median of 11 interleaved rounds of 20,000 calls; overhead = CPU time minus the raw operation's:",
    '',
    markdownTable(overheadRows),
    '',
    ...goals.map((g) => `- ${g}`),
  ].join('\n');
  console.log(`\n${markdown}`);
  const path = writeResult('retry.json', {
    machine: machine(),
    baseRate: BASE_RATE,
    durationMs: DURATION_MS,
    storm: stormRows,
    hedging: hedgeRows,
    overhead: overheadRows,
  });
  console.log(`\nwrote ${path}`);
}

await main();
