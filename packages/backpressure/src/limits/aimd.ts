import { durationMs, finiteNumber } from '@ballast/common';
import { clamp, type LimitAlgorithm, type LimitBounds, type LimitSample, limitBounds } from './limit.ts';

/** Options of {@link AimdLimit}. */
export interface AimdLimitOptions extends LimitBounds {
  /** Limit before any sample. @default 20 */
  initialLimit?: number;
  /** Lowest limit. @default 1 */
  minLimit?: number;
  /** Highest limit. @default 200 */
  maxLimit?: number;
  /** Factor applied to the limit on a drop, in (0, 1). @default 0.9 */
  backoffRatio?: number;
  /** A request slower than this counts as a drop, ms. @default 5000 */
  timeoutMs?: number;
}

/**
 * Additive increase, multiplicative decrease (Netflix concurrency-limits `AIMDLimit`):
 * the limit grows by 1 after each success while the limiter is at least half used,
 * and is multiplied by `backoffRatio` after a drop or a request slower than `timeoutMs`.
 * Reacts to failures only, not to latency growth below the timeout.
 */
export class AimdLimit implements LimitAlgorithm {
  readonly name = 'aimd';
  readonly #min: number;
  readonly #max: number;
  readonly #backoffRatio: number;
  readonly #timeoutMs: number;
  #limit: number;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: AimdLimitOptions = {}) {
    const bounds = limitBounds(options, { initialLimit: 20, minLimit: 1, maxLimit: 200 });
    this.#min = bounds.minLimit;
    this.#max = bounds.maxLimit;
    this.#limit = bounds.initialLimit;
    this.#backoffRatio = finiteNumber('backoffRatio', options.backoffRatio ?? 0.9, { min: 0.01, max: 0.99 });
    this.#timeoutMs = durationMs('timeoutMs', options.timeoutMs ?? 5000);
  }

  get limit(): number {
    return this.#limit;
  }

  update(sample: LimitSample): number {
    let next = this.#limit;
    if (sample.dropped || sample.rttMs > this.#timeoutMs) next = Math.floor(next * this.#backoffRatio);
    else if (sample.inflight * 2 >= next) next = next + 1;
    this.#limit = clamp(next, this.#min, this.#max);
    return this.#limit;
  }
}
