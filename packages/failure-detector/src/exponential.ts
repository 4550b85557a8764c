import { type Clock, durationMs } from '@ballast/common';
import { IntervalDetector } from './interval-detector.ts';

/** Options of {@link ExponentialDetector}. Defaults are Cassandra's. */
export interface ExponentialOptions {
  /**
   * Suspicion (phi) at and above which the node is suspected; Cassandra's
   * `phi_convict_threshold`. Phi = silence / mean interval / ln 10, so 8 means a silence of
   * about 18.4 mean intervals.
   * @default 8
   */
  threshold?: number;
  /**
   * Heartbeat intervals kept to estimate their mean.
   * @default 1000
   */
  maxSampleSize?: number;
  /**
   * The interval recorded for the first heartbeat, in milliseconds; Cassandra errs
   * high here, since a mean too low causes flapping.
   * @default 2000
   */
  initialIntervalMs?: number;
  /**
   * Intervals longer than this (a partition, a restart) are not recorded, in
   * milliseconds, so a node with recurring long outages is still convicted quickly.
   * @default initialIntervalMs
   */
  maxIntervalMs?: number;
  /** Time source. @default systemClock (performance.now) */
  clock?: Clock;
}

/** 1 / ln 10: turns silence / mean into -log10 of the exponential tail. */
const PHI_FACTOR = 1 / Math.LN10;

/**
 * Cassandra's variant of phi accrual: heartbeat intervals are assumed exponentially
 * distributed, so phi = -log10(e^(-t/mean)) = t / mean / ln 10, where t is the silence
 * and mean the mean recorded interval. It ignores the spread of intervals, which makes
 * it robust to bursty gossip and slow to detect with short intervals.
 *
 * @example
 * ```ts
 * const detector = new ExponentialDetector({ threshold: 8 });
 * detector.heartbeat();
 * detector.suspicion(); // grows linearly with the silence
 * ```
 */
export class ExponentialDetector extends IntervalDetector {
  /** Interval recorded for the first heartbeat, ms. */
  readonly initialIntervalMs: number;
  /** Longer intervals are not recorded, ms. */
  readonly maxIntervalMs: number;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: ExponentialOptions = {}) {
    super(options);
    this.initialIntervalMs = durationMs('initialIntervalMs', options.initialIntervalMs ?? 2000, { min: Number.MIN_VALUE });
    this.maxIntervalMs = durationMs('maxIntervalMs', options.maxIntervalMs ?? this.initialIntervalMs);
  }

  /** Cassandra's seed: the first heartbeat records `initialIntervalMs`. */
  protected seed(): void {
    this.intervals.push(this.initialIntervalMs);
  }

  /** Records intervals from 0 to `maxIntervalMs`; longer ones (a partition, a restart) are left out. */
  protected record(intervalMs: number): void {
    if (intervalMs >= 0 && intervalMs <= this.maxIntervalMs) this.intervals.push(intervalMs);
  }

  /** Phi: silence / mean interval / ln 10. */
  protected level(silenceMs: number): number {
    const silence = Math.max(0, silenceMs);
    const mean = this.intervals.mean;
    // Only zero-length intervals recorded (duplicate heartbeats): any silence is infinitely unlikely.
    if (!(mean > 0)) return silence > 0 ? Number.POSITIVE_INFINITY : 0;
    return (PHI_FACTOR * silence) / mean;
  }
}
