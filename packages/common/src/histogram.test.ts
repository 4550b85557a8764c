import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Histogram } from './histogram.ts';

describe('Histogram', () => {
  it('is empty until a value is recorded', () => {
    const h = new Histogram();
    expect(h.count).toBe(0);
    expect(h.percentile(50)).toBeNaN();
  });

  it('reports percentiles within 1.6% of the exact value', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 500 }),
        fc.integer({ min: 1, max: 99 }),
        (values, p) => {
          const h = new Histogram();
          for (const v of values) h.record(v);
          const sorted = [...values].sort((a, b) => a - b);
          const exact = sorted[Math.ceil((p / 100) * sorted.length) - 1] as number;
          const got = h.percentile(p);
          expect(Math.abs(got - exact)).toBeLessThanOrEqual(exact * 0.016 + h.resolution);
        },
      ),
    );
  });

  it('merges another histogram', () => {
    const a = new Histogram();
    const b = new Histogram();
    for (let i = 1; i <= 100; i++) (i % 2 ? a : b).record(i);
    a.merge(b);
    expect(a.count).toBe(100);
    expect(a.percentile(50)).toBeCloseTo(50, 0);
    expect(a.max).toBe(100);
    expect(a.min).toBe(1);
  });

  it('ignores negative and non-finite values', () => {
    const h = new Histogram();
    h.record(-1);
    h.record(Number.NaN);
    h.record(Number.POSITIVE_INFINITY);
    expect(h.count).toBe(0);
  });
});
