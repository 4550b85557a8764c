import { finiteNumber, integer, ratio } from '@ballast/common';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitSample, limitBounds } from './limit.ts';

/** log10, floored to an integer and at least 1, as Netflix's `Log10RootFunction`. */
function log10(limit: number): number {
  return Math.max(1, Math.floor(Math.log10(limit)));
}

/** Options of {@link VegasLimit}. */
export interface VegasLimitOptions extends LimitBounds {
  /** Limit before any sample. @default 20 */
  initialLimit?: number;
  /** Lowest limit. @default 1 */
  minLimit?: number;
  /** Highest limit. @default 1000 */
  maxLimit?: number;
  /** Weight of the new estimate against the old one, (0, 1]. @default 1 */
  smoothing?: number;
  /**
   * Forget the no-load latency every `probeMultiplier × limit` samples (plus jitter), so a
   * baseline that rose for good (a slower dependency) is learnt again. @default 30
   */
  probeMultiplier?: number;
  /**
   * Below this estimated queue (requests) the limit grows by `log10(limit)`.
   * @default (limit) => 3 × log10(limit)
   */
  alpha?: (limit: number) => number;
  /**
   * Above this estimated queue (requests) the limit shrinks by `log10(limit)`; at or below
   * `log10(limit)` it grows by `beta`. Lower values keep latency closer to the no-load latency.
   * @default (limit) => 6 × log10(limit)
   */
  beta?: (limit: number) => number;
  /**
   * At or below this estimated queue (requests) the limit grows fast, by `beta`. Lower it to 0
   * when each queued request costs a whole service time (few slots of capacity), so a queue of
   * one already stops the fast growth. @default (limit) => log10(limit)
   */
  threshold?: (limit: number) => number;
  /** Random source for the probe jitter. @default Math.random */
  random?: () => number;
}

/**
 * TCP Vegas applied to concurrency (Netflix concurrency-limits `VegasLimit`). It keeps
 * the lowest latency seen (`rttNoLoad`) and estimates the queue as
 * `limit × (1 − rttNoLoad / rtt)`: with a queue at most `threshold` (`log10(limit)`) the limit
 * grows fast (+`beta`), below `alpha` slowly (+`log10(limit)`), and above `beta` it shrinks by
 * `log10(limit)`. A drop shrinks it by `log10(limit)`. (`log10` is floored, at least 1.)
 * `alpha`, `beta` and `threshold` receive the whole-number limit, as in Netflix's builder.
 */
export class VegasLimit implements LimitAlgorithm {
  readonly name = 'vegas';
  readonly #min: number;
  readonly #max: number;
  readonly #smoothing: number;
  readonly #probeMultiplier: number;
  readonly #random: () => number;
  readonly #alpha: (limit: number) => number;
  readonly #beta: (limit: number) => number;
  readonly #threshold: (limit: number) => number;
  #limit: number;
  #rttNoLoad = 0;
  #probeCount = 0;
  #probeJitter: number;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: VegasLimitOptions = {}) {
    const bounds = limitBounds(options, { initialLimit: 20, minLimit: 1, maxLimit: 1000 });
    this.#min = bounds.minLimit;
    this.#max = bounds.maxLimit;
    this.#limit = bounds.initialLimit;
    this.#smoothing = ratio('smoothing', options.smoothing ?? 1, { min: 0.01 });
    this.#probeMultiplier = integer('probeMultiplier', options.probeMultiplier ?? 30, { min: 1 });
    this.#random = options.random ?? Math.random;
    this.#alpha = options.alpha ?? ((limit) => 3 * log10(limit));
    this.#beta = options.beta ?? ((limit) => 6 * log10(limit));
    this.#threshold = options.threshold ?? log10;
    this.#probeJitter = this.#jitter();
  }

  get limit(): number {
    return this.#limit;
  }

  /** The lowest latency observed since the last probe, ms (0 before any sample). */
  get rttNoLoadMs(): number {
    return this.#rttNoLoad;
  }

  update(sample: LimitSample): number {
    const rtt = finiteNumber('rttMs', sample.rttMs, { min: 0 });
    if (rtt <= 0) return this.#limit;
    this.#probeCount++;
    if (this.#probeCount >= this.#probeJitter * this.#probeMultiplier * this.#limit) {
      // Probe: forget the baseline so it is measured again at the current load.
      this.#probeCount = 0;
      this.#probeJitter = this.#jitter();
      this.#rttNoLoad = rtt;
      return this.#limit;
    }
    if (this.#rttNoLoad === 0 || rtt < this.#rttNoLoad) {
      this.#rttNoLoad = rtt;
      return this.#limit;
    }
    const limit = this.#limit;
    const whole = Math.floor(limit);
    const log = log10(limit);
    const queue = Math.ceil(limit * (1 - this.#rttNoLoad / rtt));
    let next: number;
    if (sample.dropped) next = limit - log;
    else if (sample.inflight * 2 < limit) {
      return limit; // application-limited: no evidence either way
    } else if (queue <= this.#threshold(whole)) next = limit + this.#beta(whole);
    else if (queue < this.#alpha(whole)) next = limit + log;
    else if (queue > this.#beta(whole)) next = limit - log;
    else return limit;
    next = clamp(next, this.#min, this.#max);
    this.#limit = (1 - this.#smoothing) * limit + this.#smoothing * next;
    return this.#limit;
  }

  #jitter(): number {
    return 0.5 + this.#random() * 0.5;
  }
}
