import type { OpossumBreaker, OpossumStats } from './opossum-types.ts';

const COUNTERS = [
  'failures',
  'fallbacks',
  'successes',
  'rejects',
  'fires',
  'timeouts',
  'cacheHits',
  'cacheMisses',
  'coalesceCacheHits',
  'coalesceCacheMisses',
  'semaphoreRejections',
] as const;
const NO_PERCENTILES: Readonly<Record<string, number>> = Object.freeze(
  Object.fromEntries([0, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 1].map((p) => [p, -1])),
);
const NO_LATENCIES: number[] = Object.freeze([]) as unknown as number[];

/** One bucket of opossum's rolling window: its counters (and, with percentiles, latencies). */
export type Bucket = Record<(typeof COUNTERS)[number], number> & { latencyTimes?: number[] };

/**
 * With `rollingPercentilesEnabled: false`, opossum 10 still pushes every call's
 * latency into its window (memory grows with the call rate) and, on every failure,
 * rebuilds its whole statistics object, percentile table included, to decide whether
 * to open: about 6 µs per failed call. This gives the opossum breaker an `increment`
 * that only counts and a `stats` getter that only sums the counters of the same
 * buckets: the numbers, and so opossum's decisions, are unchanged.
 *
 * Returns the window's buckets, newest first (the array opossum rotates in place), or
 * undefined (and changes nothing) when opossum's internals are not the expected ones,
 * or when percentiles are enabled (then opossum's own code runs as is).
 */
export function countOnlyWindow(breaker: OpossumBreaker, percentilesEnabled: boolean): Bucket[] | undefined {
  if (percentilesEnabled) return undefined;
  const status = breaker.status as object as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(status).find((s) => s.description === 'window');
  const window = key === undefined ? undefined : status[key];
  if (!Array.isArray(window) || typeof (breaker.status as { increment?: unknown }).increment !== 'function') return undefined;
  const buckets = window as Bucket[];
  Object.defineProperty(breaker.status, 'increment', {
    configurable: true,
    writable: true,
    value: (property: (typeof COUNTERS)[number]): void => {
      (buckets[0] as Bucket)[property]++;
    },
  });
  const stats = (): OpossumStats => new WindowTotals(buckets) as unknown as OpossumStats;
  Object.defineProperty(breaker, 'stats', { configurable: true, get: stats });
  Object.defineProperty(breaker.status, 'stats', { configurable: true, get: stats });
  return buckets;
}

/**
 * opossum's statistics object, summed on read: opossum's `fail()` reads only `fires`
 * and `failures`, so only those are summed on the failure path (20 reads, no
 * allocation but this object); those two are written out field by field so the
 * reads stay monomorphic. Enumerable through `toJSON()`.
 */
class WindowTotals {
  readonly #buckets: Bucket[];
  readonly latencyMean = -1;
  readonly percentiles: Readonly<Record<string, number>> = NO_PERCENTILES;
  readonly latencyTimes: number[] = NO_LATENCIES;
  constructor(buckets: Bucket[]) {
    this.#buckets = buckets;
  }
  get fires(): number {
    let n = 0;
    for (const b of this.#buckets) n += b.fires;
    return n;
  }
  get failures(): number {
    let n = 0;
    for (const b of this.#buckets) n += b.failures;
    return n;
  }
  get successes(): number {
    return this.#total('successes');
  }
  get rejects(): number {
    return this.#total('rejects');
  }
  get timeouts(): number {
    return this.#total('timeouts');
  }
  get fallbacks(): number {
    return this.#total('fallbacks');
  }
  get cacheHits(): number {
    return this.#total('cacheHits');
  }
  get cacheMisses(): number {
    return this.#total('cacheMisses');
  }
  get coalesceCacheHits(): number {
    return this.#total('coalesceCacheHits');
  }
  get coalesceCacheMisses(): number {
    return this.#total('coalesceCacheMisses');
  }
  get semaphoreRejections(): number {
    return this.#total('semaphoreRejections');
  }
  #total(name: (typeof COUNTERS)[number]): number {
    let n = 0;
    for (const b of this.#buckets) n += b[name] || 0;
    return n;
  }
  toJSON(): OpossumStats {
    const json = { latencyMean: -1, percentiles: NO_PERCENTILES, latencyTimes: NO_LATENCIES } as OpossumStats;
    for (const name of COUNTERS) json[name] = this[name];
    return json;
  }
}
