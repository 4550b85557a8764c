import { describe, expect, it } from 'vitest';
import { isInvalidOptionError } from './errors.ts';
import { nearestRank } from './quantile.ts';

describe('nearestRank', () => {
  const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];

  it('takes the least value with at least a share q at or below it', () => {
    expect(nearestRank(ten, 0.5)).toBe(5);
    expect(nearestRank(ten, 0.9)).toBe(9);
    expect(nearestRank(ten, 0.91)).toBe(10);
    expect(nearestRank(ten, 0.99)).toBe(10);
    expect(nearestRank([3, 7], 0.5)).toBe(3);
  });

  it('gives the least value at 0 and the greatest at 1', () => {
    expect(nearestRank(ten, 0)).toBe(1);
    expect(nearestRank(ten, 1)).toBe(10);
    expect(nearestRank([42], 0.5)).toBe(42);
  });

  it('is NaN for no values', () => {
    expect(nearestRank([], 0.5)).toBeNaN();
  });

  it.each([Number.NaN, -0.1, 1.5, '0.5'])('refuses q = %s, naming q', (q) => {
    let error: unknown;
    try {
      nearestRank(ten, q as number);
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect((error as Error).message).toMatch(/^q must be/);
  });
});
