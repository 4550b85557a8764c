import { finiteNumber, integer, ratio } from '@ballast/common';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitSample, limitBounds } from './limit.ts';

/** Options of {@link Gradient2Limit}. */
export interface Gradient2LimitOptions extends LimitBounds {
  /** Limit before any sample. @default 20 */
  initialLimit?: number;
  /** Lowest limit. @default 1 */
  minLimit?: number;
  /** Highest limit. @default 200 */
  maxLimit?: number;
  /** Weight of the new estimate against the old one, (0, 1]. @default 0.2 */
  smoothing?: number;
  /** Samples averaged by the long-term latency, an exponential average. @default 600 */
  longWindow?: number;
  /** How much slower than the long-term average a request may be before the limit shrinks, >= 1. @default 1.5 */
  rttTolerance?: number;
  /** Headroom added to the limit each update, in requests (a function receives the whole-number limit): allows growth and absorbs bursts. @default 4 */
  queueSize?: number | ((limit: number) => number);
}

/**
 * Netflix concurrency-limits `Gradient2Limit`: compares the latency of each request
 * (short term) with an exponential average over `longWindow` samples (long term). The
 * gradient `clamp(rttTolerance × long / short, 0.5, 1)` scales the limit down when
 * latency grows; `queueSize` is added so the limit can grow while latency is flat.
 * The long-term average decays faster after an overload ends, so the limit recovers.
 */
export class Gradient2Limit implements LimitAlgorithm {
  readonly name = 'gradient2';
  readonly #min: number;
  readonly #max: number;
  readonly #smoothing: number;
  readonly #tolerance: number;
  readonly #queueSize: (limit: number) => number;
  readonly #warmup = 10;
  readonly #factor: number;
  #limit: number;
  #longRtt = 0;
  #warmupSum = 0;
  #samples = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: Gradient2LimitOptions = {}) {
    const bounds = limitBounds(options, { initialLimit: 20, minLimit: 1, maxLimit: 200 });
    this.#min = bounds.minLimit;
    this.#max = bounds.maxLimit;
    this.#limit = bounds.initialLimit;
    this.#smoothing = ratio('smoothing', options.smoothing ?? 0.2, { min: 0.01 });
    this.#factor = 2 / (integer('longWindow', options.longWindow ?? 600, { min: 1 }) + 1);
    this.#tolerance = finiteNumber('rttTolerance', options.rttTolerance ?? 1.5, { min: 1 });
    const queueSize = options.queueSize ?? 4;
    if (typeof queueSize === 'function') this.#queueSize = queueSize;
    else {
      const fixed = finiteNumber('queueSize', queueSize, { min: 0 });
      this.#queueSize = () => fixed;
    }
  }

  get limit(): number {
    return this.#limit;
  }

  /** The long-term latency average, ms. */
  get longRttMs(): number {
    return this.#longRtt;
  }

  update(sample: LimitSample): number {
    const rtt = finiteNumber('rttMs', sample.rttMs, { min: 0 });
    if (rtt <= 0) return this.#limit;
    const limit = this.#limit;
    // Plain average of the first samples, then an exponential average (Netflix `ExpAvgMeasurement`:
    // during warm-up the average is recomputed from the sum, so the decay below does not carry over).
    if (this.#samples < this.#warmup) {
      this.#samples++;
      this.#warmupSum += rtt;
      this.#longRtt = this.#warmupSum / this.#samples;
    } else this.#longRtt = this.#longRtt * (1 - this.#factor) + rtt * this.#factor;
    const longRtt = this.#longRtt;
    // After a long overload the average sits far above current latency: decay it faster.
    if (longRtt / rtt > 2) this.#longRtt *= 0.95;
    if (sample.inflight < limit / 2) return limit; // application-limited
    const gradient = clamp((this.#tolerance * longRtt) / rtt, 0.5, 1);
    let next = limit * gradient + this.#queueSize(Math.floor(limit));
    next = limit * (1 - this.#smoothing) + next * this.#smoothing;
    this.#limit = clamp(next, this.#min, this.#max);
    return this.#limit;
  }
}
