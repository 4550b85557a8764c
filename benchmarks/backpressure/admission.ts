/**
 * Cost of one admission decision: Ballast's limiters next to bottleneck, same process, same run.
 */
import { ConcurrencyLimiter, Gcra, Gradient2Limit, KeyedRateLimiter, TokenBucket } from '@ballast/backpressure';
import Bottleneck from 'bottleneck';
import { type IsolatedResult, interleavedIsolated } from '../lib/isolated.ts';
import { heapUsed, type Measurement, measure, measureAsync } from '../lib/measure.ts';
import type { Row } from '../lib/report.ts';
import { available, BARE, BARE_FAIL, FAILURE, SUCCESS } from './limiter-contenders.ts';

export { BULKHEAD, LIMITER_BEFORE, LIMITER_EXECUTE, LIMITER_FAIL, LIMITER_FAIL_TODAY } from './limiter-contenders.ts';

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

/**
 * A call run under a concurrency limiter that admits it at once, per call (and a rejected
 * call): CPU time over the bare call and heap bytes allocated over the bare call, each
 * contender in a process of its own in interleaved rounds (see limiter-contenders.ts).
 */
export async function limiterSuccessPath(rounds = 21): Promise<Row[]> {
  const contenders = new URL('./limiter-contenders.ts', import.meta.url).href;
  const rows = (times: Map<string, IsolatedResult>, bareName: string): Row[] => {
    const bare = times.get(bareName) as IsolatedResult;
    return [...times].map(([name, t]) => ({
      limiter: name,
      'CPU ns/call': t.cpuNs,
      'overhead ns/call': t.cpuNs - bare.cpuNs,
      'bytes/call over bare': t.bytes - bare.bytes,
    }));
  };
  const success = await interleavedIsolated(contenders, available(SUCCESS), { iterations: 10_000, rounds });
  const failure = await interleavedIsolated(contenders, available(FAILURE), { iterations: 10_000, rounds });
  return [...rows(success, BARE), ...rows(failure, BARE_FAIL)];
}
