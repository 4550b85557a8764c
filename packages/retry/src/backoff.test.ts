import { isInvalidOptionError, MAX_TIMER_MS } from '@ballast/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { constantBackoff, decorrelatedJitterBackoff, exponentialBackoff } from './backoff.ts';

/** A deterministic `random` cycling through `values`. */
const sequenceOf = (values: number[]) => {
  let i = 0;
  return () => values[i++ % values.length] as number;
};
const take = (next: (retry: number) => number, n: number, from = 1): number[] => Array.from({ length: n }, (_, i) => next(from + i));

const randoms = fc.array(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), { minLength: 1, maxLength: 50 });
const ms = fc.double({ min: 0, max: 60_000, noNaN: true });

describe('constantBackoff', () => {
  it('returns the same delay before every retry', () => {
    expect(take(constantBackoff({ delayMs: 250 }).start(Math.random), 4)).toEqual([250, 250, 250, 250]);
  });
});

describe('exponentialBackoff', () => {
  it('without jitter doubles from baseMs up to maxMs', () => {
    const next = exponentialBackoff({ baseMs: 100, maxMs: 1_000, jitter: 'none' }).start(Math.random);
    expect(take(next, 6)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('full jitter scales the ceiling by the random draw', () => {
    const next = exponentialBackoff({ baseMs: 100, maxMs: 1_000 }).start(sequenceOf([0.5, 0.25, 0, 0.999]));
    expect(take(next, 4)).toEqual([50, 50, 0, 799.2]);
  });

  it('equal jitter keeps at least half the ceiling', () => {
    const next = exponentialBackoff({ baseMs: 100, maxMs: 1_000, jitter: 'equal', factor: 3 }).start(sequenceOf([0, 0.5]));
    expect(take(next, 3)).toEqual([50, 225, 450]);
  });

  it.each(['full', 'equal', 'none'] as const)('%s jitter stays within its bounds for any inputs (property)', (jitter) => {
    fc.assert(
      fc.property(
        ms,
        ms,
        fc.double({ min: 1, max: 10, noNaN: true }),
        randoms,
        fc.integer({ min: 1, max: 5_000 }),
        (base, max, factor, rs, retry) => {
          const next = exponentialBackoff({ baseMs: base, maxMs: max, factor, jitter }).start(sequenceOf(rs));
          const ceiling = base === 0 ? 0 : Math.min(max, base * factor ** (retry - 1));
          const delay = next(retry);
          const low = jitter === 'full' ? 0 : jitter === 'equal' ? ceiling / 2 : ceiling;
          expect(delay).toBeGreaterThanOrEqual(low - 1e-9);
          expect(delay).toBeLessThanOrEqual(ceiling + 1e-9);
        },
      ),
    );
  });

  it('is overflow-safe: huge retry numbers give the cap, never NaN or Infinity', () => {
    for (const jitter of ['full', 'equal', 'none'] as const) {
      const next = exponentialBackoff({ baseMs: 100, maxMs: MAX_TIMER_MS, jitter }).start(() => 0.999_999);
      for (const retry of [1_024, 1_025, 10_000, Number.MAX_SAFE_INTEGER]) {
        const delay = next(retry);
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBeLessThanOrEqual(MAX_TIMER_MS);
        expect(delay).toBeGreaterThan(MAX_TIMER_MS / 2 - 1);
      }
    }
    expect(exponentialBackoff({ baseMs: 0, jitter: 'none' }).start(Math.random)(5_000)).toBe(0);
    for (const formula of ['aws', 'polly'] as const) {
      const next = decorrelatedJitterBackoff({ baseMs: 100, maxMs: MAX_TIMER_MS, formula }).start(() => 0.999_999);
      for (const retry of [1_024, 1_025, 10_000, Number.MAX_SAFE_INTEGER]) {
        const delay = next(retry);
        expect(Number.isFinite(delay)).toBe(true);
        expect(delay).toBeLessThanOrEqual(MAX_TIMER_MS);
      }
    }
  });

  it('rejects bad options by name', () => {
    expect(() => exponentialBackoff({ maxMs: MAX_TIMER_MS + 1 })).toThrow(/maxMs/);
    expect(() => exponentialBackoff({ factor: 0.5 })).toThrow(/factor/);
    expect(() => exponentialBackoff({ jitter: 'half' as never })).toThrow(/jitter/);
    try {
      exponentialBackoff({ baseMs: -1 });
    } catch (error) {
      expect(isInvalidOptionError(error) && error.option).toBe('baseMs');
    }
  });
});

describe('decorrelatedJitterBackoff (AWS)', () => {
  it('draws uniformly between base and three times the previous delay', () => {
    const next = decorrelatedJitterBackoff({ baseMs: 100, maxMs: 10_000 }).start(sequenceOf([1 - 2 ** -53, 0, 0.5]));
    const [a, b, c] = take(next, 3);
    expect(a).toBeCloseTo(300, 6); // uniform(100, 300) at ~1
    expect(b).toBe(100); // uniform(100, 900) at 0
    expect(c).toBe(200); // uniform(100, 300) at 0.5
  });

  it('stays in [base, min(cap, 3 x previous)] for any draws (property)', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1_000, noNaN: true }),
        fc.double({ min: 1_000, max: 100_000, noNaN: true }),
        randoms,
        (base, max, rs) => {
          const next = decorrelatedJitterBackoff({ baseMs: base, maxMs: max }).start(sequenceOf(rs));
          let previous = base;
          for (let retry = 1; retry <= 40; retry++) {
            const delay = next(retry);
            expect(delay).toBeGreaterThanOrEqual(Math.min(base, max) - 1e-9);
            expect(delay).toBeLessThanOrEqual(Math.min(max, 3 * previous) + 1e-9);
            previous = delay;
          }
        },
      ),
    );
  });

  it('refuses a base above the cap', () => {
    expect(() => decorrelatedJitterBackoff({ baseMs: 500, maxMs: 100 })).toThrow(/baseMs/);
  });
});

describe('decorrelatedJitterBackoff (Polly)', () => {
  it('matches Polly DecorrelatedJitterBackoffV2 for fixed draws', () => {
    // t = attempt + r; next = 2^t * tanh(sqrt(4t)); delay = (next - prev) / 1.4 * base
    const f = (t: number) => 2 ** t * Math.tanh(Math.sqrt(4 * t));
    const next = decorrelatedJitterBackoff({ baseMs: 1_000, maxMs: 1e9, formula: 'polly' }).start(sequenceOf([0.5, 0.5, 0.5]));
    const expected = [(f(0.5) / 1.4) * 1_000, ((f(1.5) - f(0.5)) / 1.4) * 1_000, ((f(2.5) - f(1.5)) / 1.4) * 1_000];
    take(next, 3).forEach((delay, i) => {
      expect(delay).toBeCloseTo(expected[i] as number, 6);
    });
  });

  it("has medians near base, base, 2 x base, 4 x base, ... (Polly's documented shape)", () => {
    const next = () => decorrelatedJitterBackoff({ baseMs: 1_000, maxMs: 1e9, formula: 'polly' }).start(Math.random);
    const samples = Array.from({ length: 4_001 }, () => take(next(), 5));
    const expected = [1_000, 1_000, 2_000, 4_000, 8_000];
    expected.forEach((target, i) => {
      const median = samples.map((s) => s[i] as number).sort((a, b) => a - b)[2_000] as number;
      expect(median / target).toBeGreaterThan(0.75);
      expect(median / target).toBeLessThan(1.3);
    });
  });

  it('stays within [0, cap] and finite for any draws and retry counts (property)', () => {
    fc.assert(
      fc.property(
        ms,
        fc.double({ min: 1, max: MAX_TIMER_MS, noNaN: true }),
        randoms,
        fc.integer({ min: 1, max: 3_000 }),
        (base, max, rs, retries) => {
          const next = decorrelatedJitterBackoff({ baseMs: base, maxMs: max, formula: 'polly' }).start(sequenceOf(rs));
          for (let retry = Math.max(1, retries - 5); retry <= retries; retry++) {
            const delay = next(retry);
            expect(Number.isFinite(delay)).toBe(true);
            expect(delay).toBeGreaterThanOrEqual(0);
            expect(delay).toBeLessThanOrEqual(max);
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
