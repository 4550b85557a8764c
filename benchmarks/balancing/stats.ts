/**
 * Medians with distribution-free confidence intervals, for figures measured a few
 * times: the interval is a pair of order statistics [x(j), x(n+1−j)] whose coverage of
 * the true median follows from the binomial distribution (no normality assumed).
 * With 5 samples the widest pair, min–max, covers the median with probability 93.75%.
 */

import { median } from '../lib/measure.ts';

export interface Interval {
  median: number;
  low: number;
  high: number;
  /** Probability that [low, high] contains the true median. */
  confidence: number;
  /** Samples. */
  n: number;
}

function binomialHalf(n: number, k: number): number {
  let c = 1;
  for (let i = 0; i < k; i++) c = (c * (n - i)) / (i + 1);
  return c / 2 ** n;
}

/** The median of `values` and the narrowest symmetric order-statistic interval with confidence ≥ `level` (or min–max when none reaches it). */
export function medianInterval(values: number[], level = 0.95): Interval {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  const n = xs.length;
  if (n === 0) return { median: Number.NaN, low: Number.NaN, high: Number.NaN, confidence: 0, n: 0 };
  const mid = median(xs);
  // Coverage of [x(j), x(n+1-j)] (1-based) = 1 − 2·P(B ≤ j−1), B ~ Binomial(n, ½).
  let best = { j: 1, confidence: 1 - 2 * binomialHalf(n, 0) };
  let tail = binomialHalf(n, 0);
  for (let j = 2; j <= Math.floor((n + 1) / 2); j++) {
    tail += binomialHalf(n, j - 1);
    const confidence = 1 - 2 * tail;
    if (confidence < level) break;
    best = { j, confidence };
  }
  return { median: mid, low: xs[best.j - 1]!, high: xs[n - best.j]!, confidence: n === 1 ? 0 : best.confidence, n };
}

/** `'lower'` when a's interval lies wholly below b's, `'higher'` when wholly above, else `'overlap'`. */
export function compare(a: Interval, b: Interval): 'lower' | 'higher' | 'overlap' {
  if (a.high < b.low) return 'lower';
  if (a.low > b.high) return 'higher';
  return 'overlap';
}
