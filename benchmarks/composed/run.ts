/**
 * The composed stack (`npm run bench:composed`): retry ∘ circuit breaker ∘ concurrency
 * limiter ∘ timeout around a call that succeeds at once, per successful call, side by side
 * in one run with cockatiel's `wrap` of its equivalents and with Ballast as it was before
 * the policy contract (the same four concerns nested by hand, as the gateway did, imported
 * from the baseline commit; see lib/baseline.ts).
 *
 * Reported: CPU time per call over the bare call (median of interleaved rounds: on a shared
 * machine wall time mostly measures the other tenants) and heap bytes allocated per call
 * over the bare call. Results: benchmarks/results/composed.{json,md}.
 */
import { ConcurrencyLimiter } from '@ballast/backpressure';
import { CircuitBreaker } from '@ballast/circuit-breaker';
import { type Classifier, TimeoutPolicy, wrap } from '@ballast/common';
import { RetryPolicy } from '@ballast/retry';
import {
  bulkhead,
  circuitBreaker,
  wrap as cockatielWrap,
  ExponentialBackoff,
  handleAll,
  retry,
  SamplingBreaker,
  TimeoutStrategy,
  timeout,
} from 'cockatiel';
import { baseline, importBaseline } from '../lib/baseline.ts';
import { bytesPerCall, interleaved, loadAverage } from '../lib/measure.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const ITERATIONS = Number(process.env.ITERATIONS ?? 10_000);
const ROUNDS = Number(process.env.ROUNDS ?? 11);

const value = { status: 200 };
const op = async (): Promise<typeof value> => value;

type Candidate = readonly [name: string, op: () => Promise<unknown>];

const BARE = 'bare call (no policy)';
const BALLAST = 'Ballast wrap(retry, breaker, limiter, timeout)';
const BALLAST_FULL = 'Ballast wrap(...), caller signal + classify';
const COCKATIEL = 'cockatiel wrap(retry, circuitBreaker, bulkhead, timeout: aggressive)';
const COCKATIEL_COOP = 'cockatiel wrap(...), timeout: cooperative';
const BEFORE = 'Ballast before the contract: the same, nested by hand';

function ballastStack() {
  const policies = [
    new RetryPolicy({ maxAttempts: 3 }),
    // The timeout is a policy of its own here, as in cockatiel's stack.
    new CircuitBreaker({ name: 'bench', timeoutMs: false }),
    new ConcurrencyLimiter({ limit: 1_000_000 }),
    new TimeoutPolicy({ timeoutMs: 10_000 }),
  ] as const;
  return { chain: wrap(...policies), policies };
}

function cockatielStack(strategy: TimeoutStrategy) {
  return cockatielWrap(
    retry(handleAll, { maxAttempts: 2, backoff: new ExponentialBackoff() }),
    circuitBreaker(handleAll, { halfOpenAfter: 30_000, breaker: new SamplingBreaker({ threshold: 0.5, duration: 10_000 }) }),
    bulkhead(1_000_000),
    timeout(10_000, strategy),
  );
}

interface OldRetry {
  RetryPolicy: new (
    options?: object,
  ) => { execute(fn: (c: { signal: AbortSignal }) => unknown, o?: object): Promise<unknown>; close(): void };
}
interface OldBreaker {
  CircuitBreaker: new (options?: object) => { execute(fn: (s: AbortSignal) => unknown, o?: object): Promise<unknown>; close(): void };
}
interface OldBackpressure {
  ConcurrencyLimiter: new (options?: object) => { run(fn: () => unknown, o?: object): Promise<unknown>; close(): void };
}

/** Ballast at the baseline commit: retry → breaker (its own 10 s timeout) → limiter, as the gateway nested them. */
async function beforeStack(): Promise<{ run: () => Promise<unknown>; close: () => void } | undefined> {
  const [r, b, bp] = await Promise.all([
    importBaseline<OldRetry>('retry'),
    importBaseline<OldBreaker>('circuit-breaker'),
    importBaseline<OldBackpressure>('backpressure'),
  ]);
  if (!r || !b || !bp) return undefined;
  const oldRetry = new r.RetryPolicy({ maxAttempts: 3 });
  const oldBreaker = new b.CircuitBreaker({ name: 'bench', timeout: 10_000 });
  const oldLimiter = new bp.ConcurrencyLimiter({ limit: 1_000_000 });
  return {
    run: () => oldRetry.execute(({ signal }) => oldBreaker.execute(() => oldLimiter.run(op), { signal })),
    close: () => {
      oldRetry.close();
      oldBreaker.close();
      oldLimiter.close();
    },
  };
}

const classify: Classifier<typeof value> = (o) => (!o.ok || o.value.status >= 500 ? 'failure' : 'success');

async function main(): Promise<void> {
  const host = { ...machine(), loadAverage: loadAverage() };
  const base = baseline();
  console.log(`Machine: ${host.cpuModel} × ${host.cpus}, Node ${host.node}, load average ${host.loadAverage.join(' ')}`);
  console.log(`Baseline: ${'sha' in base ? `${base.ref} (${base.sha.slice(0, 10)})` : `unavailable (${base.unavailable})`}`);

  const ballast = ballastStack();
  const full = ballastStack();
  const caller = new AbortController();
  const coop = cockatielStack(TimeoutStrategy.Cooperative);
  const aggressive = cockatielStack(TimeoutStrategy.Aggressive);
  const before = await beforeStack();
  const candidates: Candidate[] = [
    [BARE, op],
    [BALLAST, () => ballast.chain.execute(op)],
    [BALLAST_FULL, () => full.chain.execute(op, { signal: caller.signal, classify })],
    [COCKATIEL, () => aggressive.execute(op)],
    [COCKATIEL_COOP, () => coop.execute(op)],
    ...(before ? [[BEFORE, before.run] as Candidate] : []),
  ];

  const times = await interleaved(candidates, { iterations: ITERATIONS, rounds: ROUNDS });
  const bytes = new Map<string, number>();
  for (const [name, run] of candidates) bytes.set(name, await bytesPerCall(run));
  const bare = times.get(BARE) as { cpuNs: number; wallNs: number };
  const bareBytes = bytes.get(BARE) as number;
  const rows: Row[] = candidates.map(([name]) => {
    const t = times.get(name) as { cpuNs: number; wallNs: number };
    return {
      stack: name,
      'CPU ns/call': t.cpuNs,
      'overhead ns/call': name === BARE ? 0 : t.cpuNs - bare.cpuNs,
      'wall ns/call': t.wallNs,
      'bytes/call': bytes.get(name) as number,
      'bytes/call over bare': name === BARE ? 0 : (bytes.get(name) as number) - bareBytes,
    };
  });
  printTable('Composed stack, per successful call (CPU time; heap bytes allocated)', rows);

  const overhead = (name: string): number => (rows.find((r) => r.stack === name)?.['overhead ns/call'] as number) ?? Number.NaN;
  const ours = overhead(BALLAST);
  const theirs = Math.min(overhead(COCKATIEL), overhead(COCKATIEL_COOP));
  const goals = [
    `Ballast composed stack: ${fmt(ours)} ns per successful call over the bare call (goal <= 1000) ${ours <= 1000 ? 'MET' : 'MISSED'}`,
    `Ballast vs cockatiel's cheapest equivalent wrap (${fmt(theirs)} ns): ${fmt(ours / theirs)}x (goal <= 1) ${ours <= theirs ? 'MET' : 'MISSED'}`,
    ...(before ? [`Ballast vs the same stack before the contract (${fmt(overhead(BEFORE))} ns): ${fmt(ours / overhead(BEFORE))}x`] : []),
  ];
  console.log(`\nGoals:\n${goals.map((g) => `- ${g}`).join('\n')}`);

  const markdown = [
    '# Composed stack: retry ∘ breaker ∘ limiter ∘ timeout',
    '',
    `\`npm run bench:composed\` — ${host.cpuModel} × ${host.cpus}, Node ${host.node}, load average at start ${host.loadAverage.join(' ')}, ${host.date}.`,
    `Median of ${ROUNDS} interleaved rounds of ${ITERATIONS.toLocaleString('en-US')} sequential calls each; CPU time of this process per call; heap bytes from batches of 2,000 calls after a full GC.`,
    `Baseline ("before the contract"): ${'sha' in base ? `commit ${base.sha.slice(0, 10)}` : 'unavailable'}.`,
    '',
    markdownTable(rows),
    '',
    ...goals.map((g) => `- ${g}`),
    '',
  ].join('\n');
  writeResult('composed.md', markdown);
  writeResult('composed.json', { machine: host, baseline: base, iterations: ITERATIONS, rounds: ROUNDS, rows, goals });
  for (const p of [...ballast.policies, ...full.policies]) (p as { close?: () => void; dispose?: () => void }).dispose?.() ?? p.close?.();
  before?.close();
}

await main();
process.exit(0);
