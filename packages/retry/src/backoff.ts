import { durationMs, finiteNumber, InvalidOptionError, MAX_TIMER_MS, oneOf } from '@ballast/common';

/**
 * The delays of one call: called with the retry number (1 before the first retry,
 * 2 before the second, ...), in order, and returns the delay before it in ms.
 */
export type BackoffSequence = (retry: number) => number;

/**
 * A backoff strategy: a small object that starts one delay sequence per call, so
 * stateful formulas (decorrelated jitter) keep their state per call and a strategy
 * can be shared by every call of a policy. Implement it to plug in your own.
 *
 * Every built-in strategy returns delays in `[0, maxMs]`, never `NaN` and never more
 * than the timer limit, whatever the retry number.
 */
export interface Backoff {
  /**
   * Starts the delays of one call.
   * @param random a source of uniform numbers in `[0, 1)`; `Math.random` unless the policy was given another.
   */
  start(random: () => number): BackoffSequence;
}

/** Options of {@link constantBackoff}. */
export interface ConstantBackoffOptions {
  /** The delay before every retry, ms. @default 100 */
  delayMs?: number;
}

/** Options of {@link exponentialBackoff}. */
export interface ExponentialBackoffOptions {
  /** Delay ceiling before the first retry, ms. @default 100 */
  baseMs?: number;
  /** Cap on the ceiling, ms; at most the timer limit (2^31 - 1). @default 10_000 */
  maxMs?: number;
  /** Growth of the ceiling per retry (>= 1). @default 2 */
  factor?: number;
  /**
   * How the delay is drawn from the ceiling `c = min(maxMs, baseMs * factor^(retry-1))`:
   * `'full'` uniform in `[0, c]` (AWS "full jitter", the default: spreads retries the most),
   * `'equal'` uniform in `[c/2, c]` (AWS "equal jitter": never retries at once),
   * `'none'` exactly `c` (synchronised clients retry together; avoid across many clients).
   * @default 'full'
   */
  jitter?: 'full' | 'equal' | 'none';
}

/** Options of {@link decorrelatedJitterBackoff}. */
export interface DecorrelatedJitterBackoffOptions {
  /** Base delay, ms: the lowest delay (`'aws'`) or the median first delay (`'polly'`). @default 100 */
  baseMs?: number;
  /** Cap on every delay, ms; at most the timer limit. @default 10_000 */
  maxMs?: number;
  /**
   * `'aws'`: `d = min(maxMs, uniform(baseMs, 3 * previous))`, starting from `previous = baseMs`
   * (the "decorrelated jitter" of the AWS Architecture Blog, "Exponential Backoff And Jitter").
   * `'polly'`: Polly's `DecorrelatedJitterBackoffV2` (formula by George Polevoy): delays grow
   * exponentially, with medians near `baseMs`, `baseMs`, `2 * baseMs`, `4 * baseMs`, ..., without
   * the clustering of AWS's formula.
   * @default 'aws'
   */
  formula?: 'aws' | 'polly';
}

/** The same delay before every retry. No jitter: use it for one client, not for a fleet. */
export function constantBackoff(options: ConstantBackoffOptions = {}): Backoff {
  const delay = durationMs('delayMs', options.delayMs ?? 100);
  const sequence: BackoffSequence = () => delay;
  return { start: () => sequence };
}

/** Exponential backoff with full, equal or no jitter, capped at `maxMs`. */
export function exponentialBackoff(options: ExponentialBackoffOptions = {}): Backoff {
  const base = durationMs('baseMs', options.baseMs ?? 100);
  const max = durationMs('maxMs', options.maxMs ?? 10_000);
  const factor = finiteNumber('factor', options.factor ?? 2, { min: 1 });
  const jitter = oneOf('jitter', options.jitter ?? 'full', ['full', 'equal', 'none']);
  const ceiling = (retry: number): number => {
    if (base === 0) return 0;
    // factor ** n overflows to Infinity for large n; min() turns that into the cap, never NaN.
    return Math.min(max, base * factor ** Math.max(0, retry - 1));
  };
  return {
    start(random) {
      switch (jitter) {
        case 'full':
          return (retry) => clamp(random() * ceiling(retry), max);
        case 'equal':
          return (retry) => {
            const c = ceiling(retry);
            return clamp(c / 2 + (random() * c) / 2, max);
          };
        case 'none':
          return ceiling;
      }
    },
  };
}

// Polly's constants: PFactor smooths the first delay, RpScalingFactor puts the medians near 1, 2, 4... x base.
const P_FACTOR = 4;
const RP_SCALING_FACTOR = 1 / 1.4;

/** Decorrelated jitter, by AWS's formula or Polly's, capped at `maxMs`. */
export function decorrelatedJitterBackoff(options: DecorrelatedJitterBackoffOptions = {}): Backoff {
  const base = durationMs('baseMs', options.baseMs ?? 100);
  const max = durationMs('maxMs', options.maxMs ?? 10_000);
  const formula = oneOf('formula', options.formula ?? 'aws', ['aws', 'polly']);
  if (formula === 'aws' && base > max) throw new InvalidOptionError('baseMs', `<= maxMs (${max})`, base);
  return {
    start(random) {
      if (formula === 'aws') {
        let previous = base;
        return () => {
          previous = clamp(base + random() * (previous * 3 - base), max);
          return previous;
        };
      }
      let previous = 0;
      return (retry) => {
        const t = retry - 1 + random();
        const next = 2 ** t * Math.tanh(Math.sqrt(P_FACTOR * t));
        // 2^t overflows past t = 1024; Polly returns the cap from there on.
        if (!Number.isFinite(next)) {
          previous = next;
          return max;
        }
        const delay = (next - previous) * RP_SCALING_FACTOR * base;
        previous = next;
        return clamp(delay, max);
      };
    },
  };
}

/** Into `[0, min(max, timer limit)]`; NaN (a misbehaving `random`) becomes the cap. */
function clamp(ms: number, max: number): number {
  const cap = Math.min(max, MAX_TIMER_MS);
  if (Number.isNaN(ms)) return cap;
  return Math.min(cap, Math.max(0, ms));
}
