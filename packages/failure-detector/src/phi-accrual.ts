import { type Clock, durationMs, finiteNumber, integer } from '@ballast/common';
import { IntervalDetector } from './interval-detector.ts';

/** Options of {@link PhiAccrualDetector}. Defaults are those of Akka Cluster's failure detector. */
export interface PhiAccrualOptions {
  /**
   * Phi at and above which the node is suspected. Phi 1 means a 10% chance that a
   * heartbeat is still on its way, 8 means 10^-8 (under the fitted normal distribution).
   * Lower detects sooner and cries wolf more often.
   * @default 8
   */
  threshold?: number;
  /**
   * Heartbeat intervals kept to estimate their mean and standard deviation.
   * @default 1000
   */
  maxSampleSize?: number;
  /**
   * Floor of the standard deviation, in milliseconds, so that very regular heartbeats
   * do not make the detector jump at the first late one.
   * @default 100
   */
  minStdDeviationMs?: number;
  /**
   * Pause tolerated on top of the mean interval, in milliseconds: lost heartbeats, GC
   * pauses. It shifts the distribution; it is the main knob for detection time.
   * @default 3000
   */
  acceptableHeartbeatPauseMs?: number;
  /**
   * Expected heartbeat interval before any has been measured, in whole milliseconds.
   * The first heartbeat seeds the history with two intervals, estimate ± estimate/4,
   * so that a node that sends one heartbeat and stops is still detected.
   * @default 1000
   */
  firstHeartbeatEstimateMs?: number;
  /** Time source. @default systemClock (performance.now) */
  clock?: Clock;
}

/**
 * The phi accrual failure detector of Hayashibara et al., computed exactly as Akka's
 * `PhiAccrualFailureDetector` does: a normal distribution fitted to the recent
 * heartbeat intervals (mean shifted by `acceptableHeartbeatPauseMs`, standard
 * deviation floored at `minStdDeviationMs`), its tail approximated with Akka's
 * logistic formula, and phi = -log10 of that tail. A heartbeat that arrives while the
 * node is suspected is not added to the history, so one long pause does not skew it.
 *
 * O(1) per heartbeat and per query: intervals live in a ring buffer with running sums.
 * With integer millisecond timestamps the results equal Akka's to the last bit.
 *
 * @example
 * ```ts
 * const detector = new PhiAccrualDetector({ threshold: 8, acceptableHeartbeatPauseMs: 2000 });
 * detector.heartbeat(); // on every heartbeat
 * detector.suspicion(); // phi now
 * detector.isAvailable(); // phi < 8
 * ```
 */
export class PhiAccrualDetector extends IntervalDetector {
  /** Floor of the standard deviation, ms. */
  readonly minStdDeviationMs: number;
  /** Pause tolerated on top of the mean interval, ms. */
  readonly acceptableHeartbeatPauseMs: number;
  /** Expected interval before any is measured, ms. */
  readonly firstHeartbeatEstimateMs: number;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: PhiAccrualOptions = {}) {
    super(options);
    this.minStdDeviationMs = finiteNumber('minStdDeviationMs', options.minStdDeviationMs ?? 100, { min: Number.MIN_VALUE });
    this.acceptableHeartbeatPauseMs = durationMs('acceptableHeartbeatPauseMs', options.acceptableHeartbeatPauseMs ?? 3000);
    this.firstHeartbeatEstimateMs = integer('firstHeartbeatEstimateMs', options.firstHeartbeatEstimateMs ?? 1000, { min: 1 });
  }

  /** Standard deviation of the recorded intervals, ms, before the `minStdDeviationMs` floor. */
  get stdDeviationMs(): number {
    return Math.sqrt(this.intervals.variance);
  }

  /** Akka's seed: two intervals, estimate ± estimate/4, so a node that sends one heartbeat and stops is still detected. */
  protected seed(): void {
    // Akka divides whole milliseconds: estimate / 4 is an integer division.
    const deviation = Math.trunc(this.firstHeartbeatEstimateMs / 4);
    this.intervals.clear();
    this.intervals.push(this.firstHeartbeatEstimateMs - deviation);
    this.intervals.push(this.firstHeartbeatEstimateMs + deviation);
  }

  /** A heartbeat that arrives while the node is suspected is not recorded: one long pause does not skew the history. */
  protected record(intervalMs: number, at: number): void {
    if (this.isAvailable(at)) this.intervals.push(Math.max(0, intervalMs));
  }

  /** Phi of the silence. */
  protected level(silenceMs: number): number {
    const stdDeviation = Math.max(Math.sqrt(this.intervals.variance), this.minStdDeviationMs);
    return phi(silenceMs, this.intervals.mean + this.acceptableHeartbeatPauseMs, stdDeviation);
  }
}

/**
 * Phi for a silence of `elapsedMs` under a normal distribution of intervals with
 * `meanMs` and `stdDeviationMs`: -log10 of the probability that a heartbeat comes
 * later still. The normal tail uses Akka's logistic approximation,
 * `1 / (1 + exp(-y (1.5976 + 0.070566 y²)))` (error below 0.00014), and past the mean
 * the algebraically equal form `e / (1 + e)`, which keeps precision for large phi.
 *
 * @example
 * ```ts
 * phi(1200, 1000, 100); // ≈ 1.64
 * ```
 */
export function phi(elapsedMs: number, meanMs: number, stdDeviationMs: number): number {
  const y = (elapsedMs - meanMs) / stdDeviationMs;
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
  return elapsedMs > meanMs ? -Math.log10(e / (1 + e)) : -Math.log10(1 - 1 / (1 + e));
}
