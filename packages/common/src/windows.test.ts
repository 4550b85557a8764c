import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isInvalidOptionError } from './errors.ts';
import { TimeDecayEwma } from './ewma.ts';
import { NumberRing } from './ring-buffer.ts';
import { RollingWindow } from './rolling-window.ts';
import { durationMs, integer, oneOf, ratio } from './validate.ts';

describe('RollingWindow', () => {
  it('counts events inside the window and forgets older ones', () => {
    const w = new RollingWindow(1000, 10, 2);
    w.add(0, 0);
    w.add(1, 50);
    w.add(0, 550);
    expect(w.totals(600)).toEqual([2, 1]);
    expect(w.total(0, 1040)).toBe(1); // the bucket of t=0 slid out
    expect(w.totals(10_000)).toEqual([0, 0]);
  });

  it('matches a brute-force count over random event times', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 200 }), (raw) => {
        const times = [...raw].sort((a, b) => a - b);
        const w = new RollingWindow(1000, 10, 1);
        for (const t of times) w.add(0, t);
        const first = times[0] ?? 0;
        const end = times.at(-1) ?? 0;
        // Buckets are aligned to the first event: the window ends with the bucket holding `end`.
        const bucketStart = first + Math.floor((end - first) / 100) * 100;
        const exact = times.filter((t) => t >= bucketStart - 900).length;
        expect(w.total(0, end)).toBe(exact);
      }),
    );
  });
});

describe('NumberRing', () => {
  it('keeps the last capacity values with O(1) mean and variance', () => {
    const ring = new NumberRing(3);
    for (const v of [1, 2, 3, 4]) ring.push(v);
    expect(ring.toArray()).toEqual([2, 3, 4]);
    expect(ring.mean).toBe(3);
    expect(ring.variance).toBeCloseTo(2 / 3);
  });
});

describe('TimeDecayEwma', () => {
  it('weighs samples by elapsed time', () => {
    const e = new TimeDecayEwma(100);
    e.update(10, 0);
    e.update(20, 100);
    expect(e.value).toBeCloseTo(10 * Math.exp(-1) + 20 * (1 - Math.exp(-1)));
  });

  it('jumps to a peak at once', () => {
    const e = new TimeDecayEwma(100);
    e.update(10, 0);
    e.updatePeak(50, 1);
    expect(e.value).toBe(50);
  });
});

describe('validators', () => {
  it('name the option and the value in their errors', () => {
    expect(() => durationMs('timeoutMs', -1)).toThrow('timeoutMs must be a finite number between 0 and 2147483647, got -1');
    expect(() => integer('limit', 1.5, { min: 1 })).toThrow('limit must be an integer >= 1, got 1.5');
    expect(() => ratio('share', Number.NaN)).toThrow('share must be a finite number between 0 and 1, got NaN');
    expect(() => oneOf('mode', 'x', ['a', 'b'])).toThrow('mode must be one of "a", "b", got "x"');
    try {
      integer('limit', '3');
    } catch (error) {
      expect(isInvalidOptionError(error)).toBe(true);
    }
  });
});
