/**
 * What every failure detector implements. A detector watches one node: it is told when
 * heartbeats arrive and answers how suspicious the silence since the last one is.
 * The built-in detectors are {@link FixedTimeoutDetector}, {@link PhiAccrualDetector}
 * and {@link ExponentialDetector}; implement this interface to plug your own into
 * {@link HeartbeatMonitor} and {@link measureQuality}.
 *
 * Times are milliseconds on the detector's clock (monotonic; only differences matter).
 * Every method takes an optional `at` so that simulations and tests can pass explicit
 * times; without it the detector reads its clock.
 *
 * Contract the monitor and the quality harness rely on: between two heartbeats,
 * `suspicion(at)` never decreases as `at` grows, and `isAvailable(at)` is
 * `suspicion(at) < threshold`.
 */
export interface FailureDetector {
  /** Records a heartbeat that arrived at `at` (ms). */
  heartbeat(at?: number): void;
  /** The suspicion level at `at`; 0 before the first heartbeat. Its scale depends on the detector. */
  suspicion(at?: number): number;
  /** False once the suspicion level has reached the threshold; true before the first heartbeat. */
  isAvailable(at?: number): boolean;
  /** The suspicion level at and above which the node is suspected. */
  readonly threshold: number;
  /** True once at least one heartbeat has been recorded. */
  readonly isMonitoring: boolean;
  /** Forgets every heartbeat, as if the detector had just been created. */
  reset(): void;
}
