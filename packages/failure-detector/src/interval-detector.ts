import { type Clock, finiteNumber, integer, NumberRing, systemClock } from '@ballast/common';
import type { FailureDetector } from './detector.ts';

/** Options every interval-based detector shares. */
export interface IntervalDetectorOptions {
  /** Suspicion at and above which the node is suspected. @default 8 */
  threshold?: number;
  /** Heartbeat intervals kept to estimate their distribution. @default 1000 */
  maxSampleSize?: number;
  /** Time source. @default systemClock (performance.now) */
  clock?: Clock;
}

/**
 * The skeleton of the accrual detectors ({@link PhiAccrualDetector},
 * {@link ExponentialDetector}): the clock, the time of the last heartbeat, a ring of the
 * recent intervals with running mean and variance, and the {@link FailureDetector}
 * contract built on them. A detector adds what differs: how the history is seeded by the
 * first heartbeat, which later intervals are recorded, and the suspicion level of a
 * silence given the history. O(1) per heartbeat and per query.
 */
export abstract class IntervalDetector implements FailureDetector {
  /** Suspicion at and above which the node is suspected. */
  readonly threshold: number;
  /** Intervals kept. */
  readonly maxSampleSize: number;
  /** The recorded intervals, ms, with running mean and variance. */
  protected readonly intervals: NumberRing;
  readonly #clock: Clock;
  #last: number | undefined;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  protected constructor(options: IntervalDetectorOptions) {
    this.threshold = finiteNumber('threshold', options.threshold ?? 8, { min: Number.MIN_VALUE });
    this.maxSampleSize = integer('maxSampleSize', options.maxSampleSize ?? 1000, { min: 1 });
    this.#clock = options.clock ?? systemClock;
    this.intervals = new NumberRing(this.maxSampleSize);
  }

  /** True once at least one heartbeat has been recorded. */
  get isMonitoring(): boolean {
    return this.#last !== undefined;
  }

  /** Mean of the recorded intervals, ms (seed included); 0 before the first heartbeat. */
  get meanIntervalMs(): number {
    return this.intervals.mean;
  }

  /** Records a heartbeat that arrived at `at` (ms; default: now on the detector's clock). */
  heartbeat(at: number = this.#clock.now()): void {
    if (this.#last === undefined) this.seed();
    else this.record(at - this.#last, at);
    this.#last = at;
  }

  /** The suspicion level at `at`; 0 before the first heartbeat. */
  suspicion(at: number = this.#clock.now()): number {
    return this.#last === undefined ? 0 : this.level(at - this.#last);
  }

  /** True while the suspicion at `at` is below the threshold, and before the first heartbeat. */
  isAvailable(at: number = this.#clock.now()): boolean {
    return this.suspicion(at) < this.threshold;
  }

  /** Forgets every heartbeat, as if the detector had just been created. */
  reset(): void {
    this.intervals.clear();
    this.#last = undefined;
  }

  /** Fills the history on the first heartbeat (there is no interval yet). */
  protected abstract seed(): void;

  /** Records (or not) the interval `intervalMs` ending with a heartbeat at `at`. */
  protected abstract record(intervalMs: number, at: number): void;

  /** The suspicion level after `silenceMs` without a heartbeat, given the history. */
  protected abstract level(silenceMs: number): number;
}
