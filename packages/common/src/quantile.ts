import { ratio } from './validate.ts';

/**
 * The nearest-rank `q` quantile of `sorted` (ascending): the least value with at least a
 * share `q` of the values at or below it, so `0.5` is the lower median and `0.99` the p99.
 * `q` runs from 0 (the least value) to 1 (the greatest). NaN when `sorted` is empty. O(1):
 * sorting is the caller's, once for every quantile it reads.
 *
 * @throws {InvalidOptionError} when `q` is not a number from 0 to 1.
 * @example
 * ```ts
 * const sorted = latenciesMs.toSorted((a, b) => a - b);
 * const p99Ms = nearestRank(sorted, 0.99);
 * ```
 */
export function nearestRank(sorted: readonly number[], q: number): number {
  ratio('q', q);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  return sorted[Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1))] as number;
}
