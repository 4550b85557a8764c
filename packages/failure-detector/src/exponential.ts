import { type Clock, durationMs, finiteNumber, integer, NumberRing, systemClock } from '@ballast/common';
import type { FailureDetector } from './detector.ts';

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
export class ExponentialDetector implements FailureDetector {
  /** Suspicion at and above which the node is suspected. */
  /** Phi at and above which the node is suspected. */
  readonly threshold: number;
  /** Intervals kept. */
  readonly maxSampleSize: number;
  /** Interval recorded for the first heartbeat, ms. */
  readonly initialIntervalMs: number;
  /** Longer intervals are not recorded, ms. */
  readonly maxIntervalMs: number;
  readonly #clock: Clock;
  readonly #intervals: NumberRing;
  #last: number | undefined;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: ExponentialOptions = {}) {
    this.threshold = finiteNumber('threshold', options.threshold ?? 8, { min: Number.MIN_VALUE });
    this.maxSampleSize = integer('maxSampleSize', options.maxSampleSize ?? 1000, { min: 1 });
    this.initialIntervalMs = durationMs('initialIntervalMs', options.initialIntervalMs ?? 2000, { min: Number.MIN_VALUE });
    this.maxIntervalMs = durationMs('maxIntervalMs', options.maxIntervalMs ?? this.initialIntervalMs);
    this.#clock = options.clock ?? systemClock;
    this.#intervals = new NumberRing(this.maxSampleSize);
  }

  /** True once at least one heartbeat has been recorded. */
  get isMonitoring(): boolean {
    return this.#last !== undefined;
  }

  /** Mean of the recorded intervals, ms; 0 before the first heartbeat. */
  get meanIntervalMs(): number {
    return this.#intervals.mean;
  }

  /** Records a heartbeat that arrived at `at` (ms; default: now on the detector's clock). */
  heartbeat(at: number = this.#clock.now()): void {
    if (this.#last === undefined) {
      this.#intervals.push(this.initialIntervalMs);
    } else {
      const interval = at - this.#last;
      if (interval >= 0 && interval <= this.maxIntervalMs) this.#intervals.push(interval);
    }
    this.#last = at;
  }

  /** Phi at `at`: silence / mean interval / ln 10; 0 before the first heartbeat. */
  suspicion(at: number = this.#clock.now()): number {
    if (this.#last === undefined) return 0;
    const silence = Math.max(0, at - this.#last);
    const mean = this.#intervals.mean;
    // Only zero-length intervals recorded (duplicate heartbeats): any silence is infinitely unlikely.
    if (!(mean > 0)) return silence > 0 ? Number.POSITIVE_INFINITY : 0;
    return (PHI_FACTOR * silence) / mean;
  }

  /** True while the suspicion at `at` is below the threshold, and before the first heartbeat. */
  isAvailable(at: number = this.#clock.now()): boolean {
    return this.suspicion(at) < this.threshold;
  }

  /** Forgets every heartbeat, as if the detector had just been created. */
  reset(): void {
    this.#intervals.clear();
    this.#last = undefined;
  }
}
