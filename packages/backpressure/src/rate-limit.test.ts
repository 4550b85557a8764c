import { isInvalidOptionError } from '@ballast/common';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Gcra, KeyedRateLimiter, type RateLimitOptions, TokenBucket } from './rate-limit.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe.each([
  ['TokenBucket', (o: { limit: number; windowMs?: number; burst?: number }) => new TokenBucket(o)],
  ['Gcra', (o: { limit: number; windowMs?: number; burst?: number }) => new Gcra(o)],
])('%s', (_name, make) => {
  it('allows a burst, then the sustained rate', () => {
    const limiter = make({ limit: 10, windowMs: 1000, burst: 5 });
    const first = Array.from({ length: 7 }, () => limiter.tryTake());
    expect(first).toEqual([true, true, true, true, true, false, false]);
    vi.advanceTimersByTime(100); // one interval
    expect(limiter.tryTake()).toBe(true);
    expect(limiter.tryTake()).toBe(false);
  });

  it('reports remaining, reset and retry-after', () => {
    const limiter = make({ limit: 10, windowMs: 1000, burst: 3 });
    expect(limiter.consume()).toEqual({ allowed: true, limit: 10, remaining: 2, resetMs: 100, retryAfterMs: 0 });
    limiter.consume();
    expect(limiter.consume()).toEqual({ allowed: true, limit: 10, remaining: 0, resetMs: 300, retryAfterMs: 0 });
    expect(limiter.consume()).toEqual({ allowed: false, limit: 10, remaining: 0, resetMs: 300, retryAfterMs: 100 });
    vi.advanceTimersByTime(40);
    expect(limiter.consume()).toMatchObject({ allowed: false, retryAfterMs: 60 });
  });

  it('charges a cost', () => {
    const limiter = make({ limit: 10, windowMs: 1000, burst: 10 });
    expect(limiter.tryTake(8)).toBe(true);
    expect(limiter.tryTake(3)).toBe(false);
    expect(limiter.tryTake(2)).toBe(true);
    expect(() => limiter.tryTake(-1)).toThrow(/cost/);
  });

  it('refuses a cost above the burst as a caller error, not a refusal with a retry-after', () => {
    const limiter = make({ limit: 10, windowMs: 1000, burst: 5 });
    let error: unknown;
    try {
      limiter.consume(6);
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect((error as Error).message).toBe('cost must be a finite number between 0 and 5, got 6');
    expect(limiter.consume(5).allowed).toBe(true);
  });

  it('never admits more than burst + rate × elapsed over any run (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 300 }), (gaps) => {
        vi.setSystemTime(0);
        const limiter = make({ limit: 20, windowMs: 1000, burst: 4 });
        const start = performance.now();
        let admitted = 0;
        for (const gap of gaps) {
          vi.advanceTimersByTime(gap);
          if (limiter.tryTake()) admitted++;
        }
        const elapsed = performance.now() - start;
        expect(admitted).toBeLessThanOrEqual(4 + Math.floor((elapsed * 20) / 1000));
      }),
      { numRuns: 50 },
    );
  });

  it('rejects invalid options naming them', () => {
    for (const [options, option] of [
      [{ limit: 0 }, 'limit'],
      [{ limit: 5, windowMs: 0 }, 'windowMs'],
      [{ limit: 5, burst: 1.5 }, 'burst'],
    ] as const) {
      let error: unknown;
      try {
        make(options);
      } catch (e) {
        error = e;
      }
      expect(isInvalidOptionError(error)).toBe(true);
      expect((error as { option: string }).option).toBe(option);
    }
    expect(() => make({ limit: -1 })).toThrow('limit must be a finite number > 0, got -1');
  });
});

describe.each([
  ['TokenBucket', (o: RateLimitOptions) => new TokenBucket(o)],
  ['Gcra', (o: RateLimitOptions) => new Gcra(o)],
])('%s on a fractional clock', (_name, make) => {
  // Rates whose interval is not a whole number of ms (1000 / 3) and clocks that read
  // fractions of a ms (performance.now(), Redis TIME): floating-point error must not refuse a
  // request that arrives on time.
  const rates = fc.record({
    limit: fc.integer({ min: 1, max: 997 }),
    windowMs: fc.constantFrom(7, 1000, 60_000, 86_400_000),
    start: fc.double({ min: 0, max: 1e12, noNaN: true }),
  });

  it('admits the first request with a burst of 1', () => {
    const now = 1000.3;
    expect(make({ limit: 3, windowMs: 1000, burst: 1, clock: { now: () => now } }).tryTake()).toBe(true);
    fc.assert(
      fc.property(rates, ({ limit, windowMs, start }) => {
        expect(make({ limit, windowMs, burst: 1, clock: { now: () => start } }).tryTake()).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('admits one request per interval to a caller that waits exactly one interval, and no more', () => {
    fc.assert(
      fc.property(rates, fc.integer({ min: 1, max: 4 }), ({ limit, windowMs, start }, burst) => {
        let now = start;
        const limiter = make({ limit, windowMs, burst, clock: { now: () => now } });
        for (let i = 0; i < burst; i++) expect(limiter.tryTake()).toBe(true);
        expect(limiter.tryTake()).toBe(false);
        const { remaining, retryAfterMs } = limiter.consume();
        expect(remaining).toBe(0);
        expect(retryAfterMs).toBeGreaterThan(0);
        for (let i = 0; i < 20; i++) {
          now += windowMs / limit;
          expect(limiter.tryTake()).toBe(true);
          expect(limiter.tryTake()).toBe(false);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('reports remaining and reset without a float artefact', () => {
    const now = 1000.3;
    const limiter = make({ limit: 3, windowMs: 1000, burst: 2, clock: { now: () => now } });
    expect(limiter.consume()).toEqual({ allowed: true, limit: 3, remaining: 1, resetMs: 334, retryAfterMs: 0 });
    expect(limiter.consume()).toEqual({ allowed: true, limit: 3, remaining: 0, resetMs: 667, retryAfterMs: 0 });
    expect(limiter.consume()).toEqual({ allowed: false, limit: 3, remaining: 0, resetMs: 667, retryAfterMs: 334 });
  });
});

describe('KeyedRateLimiter', () => {
  it('limits each key separately', () => {
    const limiter = new KeyedRateLimiter({ limit: 2, windowMs: 1000 });
    expect([limiter.tryTake('a'), limiter.tryTake('a'), limiter.tryTake('a')]).toEqual([true, true, false]);
    expect(limiter.tryTake('b')).toBe(true);
    expect(limiter.stats()).toMatchObject({ keys: 2, allowed: 3, limited: 1 });
  });

  it.each(['gcra', 'tokenBucket'] as const)('keeps memory bounded by maxKeys, evicting the least recently used (%s)', (algorithm) => {
    const limiter = new KeyedRateLimiter({ limit: 1, windowMs: 60_000, maxKeys: 3, algorithm });
    const evicted: string[] = [];
    limiter.on('evict', ({ key }) => evicted.push(key));
    limiter.tryTake('a');
    limiter.tryTake('b');
    limiter.tryTake('c');
    limiter.tryTake('a'); // a is now most recent (and refused)
    limiter.tryTake('d'); // evicts b
    expect(limiter.size).toBe(3);
    expect(evicted).toEqual(['b']);
    expect(limiter.tryTake('a')).toBe(false); // a kept its state
    for (let i = 0; i < 10_000; i++) limiter.tryTake(`flood-${i}`);
    expect(limiter.size).toBe(3);
  });

  it('does not count the eviction of an idle key', () => {
    const limiter = new KeyedRateLimiter({ limit: 10, windowMs: 1000, maxKeys: 1 });
    limiter.tryTake('a');
    vi.advanceTimersByTime(1000);
    limiter.tryTake('b');
    expect(limiter.stats().evicted).toBe(0);
  });

  it('emits shed with the retry-after of the refused request', () => {
    const limiter = new KeyedRateLimiter({ limit: 1, windowMs: 1000, name: 'tenant' });
    const shed: unknown[] = [];
    limiter.on('shed', (e) => shed.push(e));
    limiter.consume('t1');
    limiter.consume('t1');
    expect(shed).toEqual([{ name: 'tenant', key: 't1', reason: 'rateLimited', retryAfterMs: 1000 }]);
    expect(limiter.policy).toEqual({ name: 'tenant', limit: 1, windowMs: 1000 });
    limiter.close();
    expect(limiter.size).toBe(0);
  });

  it('rejects an unknown algorithm and a bad maxKeys', () => {
    expect(() => new KeyedRateLimiter({ limit: 1, algorithm: 'leaky' as 'gcra' })).toThrow(/algorithm/);
    expect(() => new KeyedRateLimiter({ limit: 1, maxKeys: 0 })).toThrow(/maxKeys/);
  });
});
