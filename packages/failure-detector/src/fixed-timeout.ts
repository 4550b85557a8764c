import { type Clock, durationMs, systemClock } from '@ballast/common';
import type { FailureDetector } from './detector.ts';

/** Options of {@link FixedTimeoutDetector}. */
export interface FixedTimeoutOptions {
  /**
   * Silence after which the node is suspected, in milliseconds.
   * @default 3000
   */
  timeoutMs?: number;
  /** Time source. @default systemClock (performance.now) */
  clock?: Clock;
}

/**
 * The classic detector: a node is suspected once no heartbeat has arrived for
 * `timeoutMs`. Its suspicion level is the silence as a share of the timeout, so the
 * threshold is 1.
 *
 * @example
 * ```ts
 * const detector = new FixedTimeoutDetector({ timeoutMs: 3000 });
 * detector.heartbeat();
 * detector.isAvailable(); // true for the next 3 s
 * ```
 */
export class FixedTimeoutDetector implements FailureDetector {
  /** Always 1: suspected when the silence reaches the timeout. */
  readonly threshold = 1;
  /** Silence after which the node is suspected, ms. */
  readonly timeoutMs: number;
  readonly #clock: Clock;
  #last: number | undefined;

  /** @throws {InvalidOptionError} when `timeoutMs` is not a duration > 0. */
  constructor(options: FixedTimeoutOptions = {}) {
    this.timeoutMs = durationMs('timeoutMs', options.timeoutMs ?? 3000, { min: Number.MIN_VALUE });
    this.#clock = options.clock ?? systemClock;
  }

  /** True once at least one heartbeat has been recorded. */
  get isMonitoring(): boolean {
    return this.#last !== undefined;
  }

  /** Records a heartbeat that arrived at `at` (ms; default: now on the detector's clock). */
  heartbeat(at: number = this.#clock.now()): void {
    this.#last = at;
  }

  /** Silence since the last heartbeat divided by `timeoutMs`. */
  suspicion(at: number = this.#clock.now()): number {
    return this.#last === undefined ? 0 : Math.max(0, at - this.#last) / this.timeoutMs;
  }

  /** True while the suspicion at `at` is below the threshold, and before the first heartbeat. */
  isAvailable(at: number = this.#clock.now()): boolean {
    return this.#last === undefined || at - this.#last < this.timeoutMs;
  }

  /** Forgets every heartbeat, as if the detector had just been created. */
  reset(): void {
    this.#last = undefined;
  }
}
