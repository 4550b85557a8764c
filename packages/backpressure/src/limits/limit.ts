import { finiteNumber, InvalidOptionError } from '@ballast/common';

/** One completed request, as a limit algorithm sees it. */
export interface LimitSample {
  /** The request's latency (round-trip time), ms. */
  rttMs: number;
  /** Requests in flight when this one was admitted, itself included. */
  inflight: number;
  /** True when the request ended in a way that signals overload (timeout, 503, failure). */
  dropped: boolean;
  /** Clock time when the request completed, ms. */
  now: number;
}

/**
 * A concurrency-limit algorithm: it is fed each request's latency and outcome and
 * answers the limit to apply. Implement it to plug in your own algorithm.
 *
 * @example
 * ```ts
 * const fixedAt10: LimitAlgorithm = { name: 'ten', limit: 10, update: () => 10 };
 * ```
 */
export interface LimitAlgorithm {
  /** A short name for logs and metrics, e.g. `gradient2`. */
  readonly name: string;
  /** The current limit; the limiter admits `floor(limit)` requests at once (at least 1). */
  readonly limit: number;
  /** Feeds one sample and returns the new limit. */
  update(sample: LimitSample): number;
  /**
   * False for an algorithm that ignores samples (a fixed limit): the limiter then skips
   * measuring latency on `execute`'s path (two clock reads per call) and never calls `update`.
   * @default true
   */
  readonly adaptive?: boolean;
}

/** Bounds shared by the adaptive algorithms. */
export interface LimitBounds {
  /** Limit before any sample. */
  initialLimit?: number;
  /** The limit never goes below this. */
  minLimit?: number;
  /** The limit never goes above this. */
  maxLimit?: number;
}

/** Validates `initialLimit`, `minLimit`, `maxLimit` against each other. */
export function limitBounds(options: LimitBounds, defaults: Required<LimitBounds>): Required<LimitBounds> {
  const minLimit = finiteNumber('minLimit', options.minLimit ?? defaults.minLimit, { min: 1 });
  const maxLimit = finiteNumber('maxLimit', options.maxLimit ?? Math.max(defaults.maxLimit, minLimit), { min: minLimit });
  const initialLimit = options.initialLimit ?? Math.min(Math.max(defaults.initialLimit, minLimit), maxLimit);
  finiteNumber('initialLimit', initialLimit, { min: 1 });
  if (initialLimit < minLimit || initialLimit > maxLimit) {
    throw new InvalidOptionError('initialLimit', `between minLimit (${minLimit}) and maxLimit (${maxLimit})`, initialLimit);
  }
  return { initialLimit, minLimit, maxLimit };
}

/** Clamps `value` into `[min, max]`. */
export function clamp(value: number, min: number, max: number): number {
  return value < min ? min : value > max ? max : value;
}

/**
 * A limit that never moves.
 *
 * @example
 * ```ts
 * new ConcurrencyLimiter({ limit: new FixedLimit(50) }); // same as { limit: 50 }
 * ```
 */
export class FixedLimit implements LimitAlgorithm {
  readonly name = 'fixed';
  /** Samples change nothing: the limiter need not measure them. */
  readonly adaptive = false;
  readonly limit: number;

  /**
   * @param limit requests admitted at once, >= 1.
   * @throws {InvalidOptionError} when `limit` is not a number >= 1.
   */
  constructor(limit: number) {
    this.limit = finiteNumber('limit', limit, { min: 1 });
  }

  update(): number {
    return this.limit;
  }
}
