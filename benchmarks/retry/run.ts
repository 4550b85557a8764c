/**
 * @ballast/retry benchmarks (`npm run bench:retry`).
 *
 * 1. Retry storm: clients call an upstream that fails every request, on an open-loop
 *    schedule at a fixed base rate, with no retries, with retries and no budget, and with
 *    retries under each default budget, side by side in one run. Reported: upstream load
 *    as a multiple of the base rate, over the whole run and in the steady state.
 * 2. Overhead per call that succeeds on its first attempt, next to raw p-retry and
 *    cockatiel's retry, measured in the same run.
 */
import { constantBackoff, type RetryBudget, RetryPolicy, ratioBudget, retry, tokenBucketBudget } from '@ballast/retry';
import { retry as cockatielRetry, ExponentialBackoff, handleAll } from 'cockatiel';
import pRetry from 'p-retry';
import { measureAsync } from '../lib/measure.ts';
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
  const op = async (): Promise<number> => 1;
  const opWithSignal = async ({ signal }: { signal: AbortSignal }): Promise<number> => (signal.aborted ? 0 : 1);
  const opts = { iterations: 50_000, samples: 9 };
  const cockatiel = cockatielRetry(handleAll, { maxAttempts: MAX_ATTEMPTS - 1, backoff: new ExponentialBackoff() });
  const ballast = new RetryPolicy();
  const ballastFull = new RetryPolicy({ timeoutMs: 1_000, budget: ratioBudget() });
  const signal = new AbortController().signal;
  const backoff = constantBackoff({ delayMs: 100 });

  const raw = await measureAsync('raw operation (no retry)', () => op(), opts);
  const rows = [
    await measureAsync('p-retry 9 (retries: 2)', () => pRetry(op, { retries: MAX_ATTEMPTS - 1 }), opts),
    await measureAsync('cockatiel 3 retry (maxAttempts: 2)', () => cockatiel.execute(op), opts),
    await measureAsync('Ballast RetryPolicy.execute (defaults: 3 attempts, 30 s deadline)', () => ballast.execute(op), opts),
    await measureAsync('Ballast execute, operation reads its signal', () => ballast.execute(opWithSignal), opts),
    await measureAsync(
      'Ballast execute + timeoutMs + caller signal + ratio budget',
      () => ballastFull.execute(opWithSignal, { signal }),
      opts,
    ),
    await measureAsync('Ballast retry() one-shot (builds a policy per call)', () => retry(op, { backoff }), opts),
  ];
  ballast.close();
  ballastFull.close();
  return [raw, ...rows].map((m) => ({
    candidate: m.name,
    'ns/call': m.nsPerOp,
    'overhead µs': (m.nsPerOp - raw.nsPerOp) / 1000,
    'min ns': m.minNs,
    'max ns': m.maxNs,
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
  printTable('Retry storm (upstream load relative to the base rate)', stormRows);

  const overheadRows = await overhead();
  printTable('Overhead per call succeeding on the first attempt', overheadRows);

  const markdown = [
    `Retry storm: ${BASE_RATE} calls/s for ${DURATION_MS / 1000} s, upstream failing 100%, maxAttempts ${MAX_ATTEMPTS}, steady state from ${STEADY_FROM_MS / 1000} s.`,
    '',
    markdownTable(stormRows),
    '',
    'Overhead per call succeeding on the first attempt (median of 9 samples of 50,000 calls):',
    '',
    markdownTable(overheadRows),
  ].join('\n');
  console.log(`\n${markdown}`);
  const path = writeResult('retry.json', {
    machine: machine(),
    baseRate: BASE_RATE,
    durationMs: DURATION_MS,
    storm: stormRows,
    overhead: overheadRows,
  });
  console.log(`\nwrote ${path}`);
}

await main();
