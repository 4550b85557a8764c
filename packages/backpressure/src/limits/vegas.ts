import { finiteNumber, integer, ratio } from '@ballast/common';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitSample, limitBounds } from './limit.ts';

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
  /** Random source for the probe jitter. @default Math.random */
  random?: () => number;
}

/**
 * TCP Vegas applied to concurrency (Netflix concurrency-limits `VegasLimit`). It keeps
 * the lowest latency seen (`rttNoLoad`) and estimates the queue as
 * `limit × (1 − rttNoLoad / rtt)`: with a queue below `log10(limit)` the limit grows fast
 * (+`6·log10(limit)`), below `3·log10(limit)` slowly (+`log10(limit)`), and above
 * `6·log10(limit)` it shrinks by `log10(limit)`. A drop shrinks it by `log10(limit)`.
 */
export class VegasLimit implements LimitAlgorithm {
  readonly name = 'vegas';
  readonly #min: number;
  readonly #max: number;
  readonly #smoothing: number;
  readonly #probeMultiplier: number;
  readonly #random: () => number;
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
    const log = Math.max(1, Math.log10(limit));
    const queue = Math.ceil(limit * (1 - this.#rttNoLoad / rtt));
    let next: number;
    if (sample.dropped) next = limit - log;
    else if (sample.inflight * 2 < limit)
      return limit; // application-limited: no evidence either way
    else if (queue <= log) next = limit + 6 * log;
    else if (queue < 3 * log) next = limit + log;
    else if (queue > 6 * log) next = limit - log;
    else return limit;
    next = clamp(next, this.#min, this.#max);
    this.#limit = (1 - this.#smoothing) * limit + this.#smoothing * next;
    return this.#limit;
  }

  #jitter(): number {
    return 0.5 + this.#random() * 0.5;
  }
}
