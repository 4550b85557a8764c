/**
 * Cost of one admission decision: Ballast's limiters next to bottleneck, same process, same run.
 */
import { ConcurrencyLimiter, Gcra, Gradient2Limit, KeyedRateLimiter, TokenBucket, VegasLimit } from '@ballast/backpressure';
import Bottleneck from 'bottleneck';
import { bulkhead } from 'cockatiel';
import { importBaseline } from '../lib/baseline.ts';
import { bytesPerCall, heapUsed, interleaved, type Measurement, measure, measureAsync } from '../lib/measure.ts';
import type { Row } from '../lib/report.ts';

export interface AdmissionResults {
  decisions: Measurement[];
  bottleneck: {
    /** Median time from `schedule()` to the job running, one job at a time, ms. */
    startDelayMs: number;
    /** p99 of the same, ms. */
    startDelayP99Ms: number;
    /** Jobs per second with 5,000 jobs scheduled at once (no limits set). */
    jobsPerSec: number;
  };
  /** Heap growth for 100,000 tracked keys in a KeyedRateLimiter capped at 10,000, bytes. */
  keyedHeapBytes: number;
}

export async function admissionBenchmarks(): Promise<AdmissionResults> {
  const fixed = new ConcurrencyLimiter({ limit: 1_000_000 });
  const adaptive = new ConcurrencyLimiter({ limit: new Gradient2Limit({ initialLimit: 100, maxLimit: 1_000_000 }) });
  const bucket = new TokenBucket({ limit: 1e12, windowMs: 1000 });
  const gcra = new Gcra({ limit: 1e12, windowMs: 1000 });
  const keyed = new KeyedRateLimiter({ limit: 1e12, windowMs: 1000, maxKeys: 10_000 });
  const keys = Array.from({ length: 1000 }, (_, i) => `tenant-${i}`);
  // Two passes; the second is reported, so no candidate pays for warming up shared code.
  let decisions: Measurement[] = [];
  for (let pass = 0; pass < 2; pass++)
    decisions = [
      measure('ConcurrencyLimiter tryAcquire + release (fixed limit)', () => fixed.tryAcquire()?.release()),
      measure('ConcurrencyLimiter tryAcquire + release (Gradient2)', () => adaptive.tryAcquire()?.release()),
      await measureAsync('ConcurrencyLimiter await acquire() + release (fixed limit)', async () => (await fixed.acquire()).release(), {
        iterations: 50_000,
      }),
      measure('TokenBucket tryTake', () => bucket.tryTake()),
      measure('TokenBucket consume (with header details)', () => bucket.consume()),
      measure('Gcra tryTake', () => gcra.tryTake()),
      measure('KeyedRateLimiter tryTake (1,000 keys, GCRA)', (i) => keyed.tryTake(keys[i % 1000] as string)),
    ];

  const bn = new Bottleneck();
  decisions.push(
    await measureAsync('bottleneck schedule() one job, awaited', () => bn.schedule(async () => 1), {
      iterations: 300,
      samples: 5,
      warmup: 100,
    }),
  );
  const delays: number[] = [];
  for (let i = 0; i < 300; i++) {
    const t0 = performance.now();
    await bn.schedule(async () => delays.push(performance.now() - t0));
  }
  delays.sort((a, b) => a - b);
  const burst = new Bottleneck();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 5000 }, () => burst.schedule(async () => 1)));
  const jobsPerSec = 5000 / ((performance.now() - t0) / 1000);
  await bn.disconnect();
  await burst.disconnect();

  const before = heapUsed();
  const bounded = new KeyedRateLimiter({ limit: 10, windowMs: 1000, maxKeys: 10_000 });
  for (let i = 0; i < 100_000; i++) bounded.tryTake(`ip-${i}`);
  const keyedHeapBytes = heapUsed() - before;
  if (bounded.size !== 10_000) throw new Error('keyed limiter not bounded');

  return {
    decisions,
    bottleneck: {
      startDelayMs: delays[Math.floor(delays.length / 2)] as number,
      startDelayP99Ms: delays[Math.floor(delays.length * 0.99)] as number,
      jobsPerSec,
    },
    keyedHeapBytes,
  };
}

interface OldBackpressure {
  ConcurrencyLimiter: new (options?: object) => { run(fn: () => unknown): Promise<unknown>; close(): void };
}

export const LIMITER_BEFORE = 'Ballast ConcurrencyLimiter.run, before the contract (baseline commit, fixed limit)';
export const LIMITER_EXECUTE = 'Ballast ConcurrencyLimiter.execute (fixed limit)';
export const BULKHEAD = 'cockatiel bulkhead(limit).execute';

/**
 * A call run under a concurrency limiter that admits it at once, per call: CPU time over
 * the bare call (interleaved rounds) and heap bytes allocated over the bare call. Ballast's
 * `execute` (fixed and adaptive limits), its older `run`, the same at the baseline commit,
 * and cockatiel's bulkhead, the closest peer.
 */
export async function limiterSuccessPath(rounds = 11): Promise<Row[]> {
  const value = { ok: true };
  const op = async (): Promise<typeof value> => value;
  const fixed = new ConcurrencyLimiter({ limit: 1_000_000 });
  const vegas = new ConcurrencyLimiter({ limit: new VegasLimit({ maxLimit: 1_000_000, initialLimit: 1_000_000 }) });
  const peer = bulkhead(1_000_000);
  const old = await importBaseline<OldBackpressure>('backpressure');
  const before = old ? new old.ConcurrencyLimiter({ limit: 1_000_000 }) : undefined;
  const candidates: Array<readonly [string, () => Promise<unknown>]> = [
    ['bare call', op],
    [LIMITER_EXECUTE, () => fixed.execute(op)],
    ['Ballast ConcurrencyLimiter.execute (Vegas, adaptive)', () => vegas.execute(op)],
    ['Ballast ConcurrencyLimiter.run (fixed limit)', () => fixed.run(op)],
    ...(before ? [[LIMITER_BEFORE, () => before.run(op)] as const] : []),
    [BULKHEAD, () => peer.execute(op)],
  ];
  const times = await interleaved(candidates, { iterations: 10_000, rounds });
  const bytes = new Map<string, number>();
  for (const [name, run] of candidates) bytes.set(name, await bytesPerCall(run));
  fixed.close();
  vegas.close();
  before?.close();
  const bare = times.get('bare call')?.cpuNs ?? 0;
  const bareBytes = bytes.get('bare call') ?? 0;
  return candidates.map(([name]) => ({
    limiter: name,
    'CPU ns/call': times.get(name)?.cpuNs,
    'overhead ns/call': (times.get(name)?.cpuNs ?? 0) - bare,
    'bytes/call over bare': (bytes.get(name) ?? 0) - bareBytes,
  }));
}
