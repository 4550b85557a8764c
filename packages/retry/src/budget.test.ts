import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RatioBudget, ratioBudget, TokenBucketBudget, tokenBucketBudget } from './budget.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TokenBucketBudget (gRPC retry throttling)', () => {
  it('starts full, spends 1 per failure, earns tokenRatio per success, capped at maxTokens', () => {
    const budget = tokenBucketBudget({ maxTokens: 10, tokenRatio: 0.5 });
    expect(budget.tokens).toBe(10);
    budget.onSuccess();
    expect(budget.tokens).toBe(10);
    budget.onFailure();
    budget.onFailure();
    expect(budget.tokens).toBe(8);
    budget.onSuccess();
    expect(budget.tokens).toBe(8.5);
  });

  it('allows retries only while more than half the bucket is left', () => {
    const budget = new TokenBucketBudget({ maxTokens: 10, tokenRatio: 0.1 });
    for (let i = 0; i < 4; i++) budget.onFailure();
    expect(budget.tryAcquire()).toBe(true); // 6 > 5
    budget.onFailure();
    expect(budget.tryAcquire()).toBe(false); // 5 is not > 5
    for (let i = 0; i < 10; i++) budget.onSuccess();
    expect(budget.tokens).toBeCloseTo(6, 10);
    expect(budget.tryAcquire()).toBe(true);
    expect(budget.stats()).toMatchObject({ kind: 'tokenBucket', allowed: 2, suppressed: 1 });
  });

  it('never leaves [0, maxTokens] under any sequence (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('s', 'f', 'a')), fc.integer({ min: 1, max: 1000 }), (ops, max) => {
        const budget = tokenBucketBudget({ maxTokens: max, tokenRatio: 0.3 });
        for (const op of ops) {
          if (op === 's') budget.onSuccess();
          else if (op === 'f') budget.onFailure();
          else expect(budget.tryAcquire()).toBe(budget.tokens > max / 2);
          expect(budget.tokens).toBeGreaterThanOrEqual(0);
          expect(budget.tokens).toBeLessThanOrEqual(max);
        }
      }),
    );
  });

  it('refuses everything once closed, and validates its options', () => {
    const budget = tokenBucketBudget();
    budget[Symbol.dispose]();
    expect(budget.tryAcquire()).toBe(false);
    expect(() => tokenBucketBudget({ maxTokens: 0 })).toThrow(/maxTokens/);
    expect(() => tokenBucketBudget({ tokenRatio: 0 })).toThrow(/tokenRatio/);
  });
});

describe('RatioBudget (Envoy / Finagle)', () => {
  it('allows retries up to ratio x requests in the window', () => {
    const budget = ratioBudget({ ratio: 0.2, minRetriesPerSec: 0, windowMs: 10_000 });
    for (let i = 0; i < 100; i++) budget.onRequest();
    let allowed = 0;
    for (let i = 0; i < 50; i++) if (budget.tryAcquire()) allowed++;
    expect(allowed).toBe(20);
    expect(budget.stats()).toMatchObject({ kind: 'ratio', requests: 100, retries: 20, limit: 20, allowed: 20, suppressed: 30 });
  });

  it('always allows minRetriesPerSec x window, even with no traffic (Envoy takes the larger)', () => {
    const budget = new RatioBudget({ ratio: 0.2, minRetriesPerSec: 2, windowMs: 5_000 });
    let allowed = 0;
    for (let i = 0; i < 20; i++) if (budget.tryAcquire()) allowed++;
    expect(allowed).toBe(10);
    for (let i = 0; i < 100; i++) budget.onRequest();
    // max(10, 0.2 x 100) = 20: ten more.
    for (let i = 0; i < 20; i++) if (budget.tryAcquire()) allowed++;
    expect(allowed).toBe(20);
  });

  it('forgets requests and retries once they leave the sliding window', () => {
    const budget = ratioBudget({ ratio: 0.5, minRetriesPerSec: 0, windowMs: 1_000, buckets: 10 });
    for (let i = 0; i < 10; i++) budget.onRequest();
    for (let i = 0; i < 5; i++) expect(budget.tryAcquire()).toBe(true);
    expect(budget.tryAcquire()).toBe(false);
    vi.advanceTimersByTime(1_000);
    expect(budget.stats()).toMatchObject({ requests: 0, retries: 0 });
    expect(budget.tryAcquire()).toBe(false);
    budget.onRequest();
    budget.onRequest();
    expect(budget.tryAcquire()).toBe(true);
  });

  it('keeps retries within max(reserve, ratio x requests) for any arrival pattern (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.boolean())), (events) => {
        vi.setSystemTime(0);
        const budget = ratioBudget({ ratio: 0.2, minRetriesPerSec: 1, windowMs: 1_000, buckets: 10 });
        for (const [gap, isRetry] of events) {
          vi.advanceTimersByTime(gap);
          if (isRetry) budget.tryAcquire();
          else budget.onRequest();
          const { requests = 0, retries = 0 } = budget.stats();
          expect(retries).toBeLessThanOrEqual(Math.max(1, 0.2 * requests));
        }
      }),
    );
  });

  it('schedules no timer, refuses once closed, and validates its options', () => {
    const budget = ratioBudget();
    budget.onRequest();
    expect(vi.getTimerCount()).toBe(0);
    budget.close();
    expect(budget.tryAcquire()).toBe(false);
    expect(() => ratioBudget({ ratio: -0.1 })).toThrow(/ratio/);
    expect(() => ratioBudget({ windowMs: 0 })).toThrow(/windowMs/);
    expect(() => ratioBudget({ minRetriesPerSec: Number.NaN })).toThrow(/minRetriesPerSec/);
  });
});
