import { availableParallelism } from 'node:os';
import { ConcurrencyLimiter, type Permit, ShedError } from '@ballast/backpressure';
import { type Clock, durationMs, integer, systemClock, TimeDecayEwma } from '@ballast/common';

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Requests this API server holds at once (waiting for a result or being read); beyond it, 503. @default 256 */
  maxInflight?: number;
  /** Conversions the workers run at once, system-wide; turns queue depth into an expected wait. @default os.availableParallelism() */
  workerSlots?: number;
  /** Shed when the expected queue wait exceeds this, ms, even if the deadline is later: keeps admitted requests fast. @default 400 */
  maxExpectedWaitMs?: number;
  /** How long a queue depth reading is reused, ms. @default 50 */
  depthCacheMs?: number;
  clock?: Clock;
}

/**
 * Admission at the API's door, before the body is read: a concurrency limit
 * (@ballast/backpressure's `ConcurrencyLimiter`, no waiting) and an expected-wait
 * check — jobs ahead beyond the worker slots × mean conversion time ÷ worker slots — against the request's
 * deadline. Both shed with a `ShedError` carrying a `Retry-After` hint.
 */
export class Admission implements Disposable {
  readonly limiter: ConcurrencyLimiter;
  readonly #slots: number;
  readonly #maxExpectedWaitMs: number;
  readonly #depthCacheMs: number;
  readonly #clock: Clock;
  readonly #serviceMs = new TimeDecayEwma(10_000, 50);
  readonly #depth: () => Promise<number>;
  #depthValue = 0;
  #depthAt = Number.NEGATIVE_INFINITY;
  #depthPending: Promise<number> | undefined;

  constructor(depth: () => Promise<number>, options: AdmissionOptions = {}) {
    this.#depth = depth;
    this.#slots = integer('workerSlots', options.workerSlots ?? availableParallelism(), { min: 1 });
    this.#maxExpectedWaitMs = durationMs('maxExpectedWaitMs', options.maxExpectedWaitMs ?? 400);
    this.#depthCacheMs = durationMs('depthCacheMs', options.depthCacheMs ?? 50);
    this.#clock = options.clock ?? systemClock;
    this.limiter = new ConcurrencyLimiter({
      name: 'api',
      limit: integer('maxInflight', options.maxInflight ?? 256, { min: 1 }),
      maxQueue: 0,
      retryAfterMs: 1000,
      clock: this.#clock,
    });
  }

  /**
   * Admits a request whose result is due within `deadlineMs`, or throws a `ShedError`.
   * The permit must be released when the request ends.
   */
  async admit(deadlineMs: number): Promise<Permit> {
    const permit = this.limiter.tryAcquire();
    if (!permit) throw new ShedError('limit', 1000, `this server already holds ${this.limiter.limit} requests`);
    let expected: number;
    try {
      expected = this.expectedWaitMs(await this.#readDepth());
    } catch (error) {
      permit.release({ ignore: true });
      throw error;
    }
    const budget = Math.min(this.#maxExpectedWaitMs, deadlineMs - this.#serviceMs.value);
    if (expected > budget) {
      permit.release({ ignore: true });
      const why =
        budget <= 0
          ? `the deadline of ${deadlineMs} ms leaves no time to wait: a conversion takes about ${Math.round(this.#serviceMs.value)} ms`
          : `expected queue wait ${Math.round(expected)} ms exceeds the ${Math.round(budget)} ms this request can wait`;
      throw new ShedError('queueTimeout', Math.max(1000, expected - budget), why);
    }
    this.#depthValue++; // count ourselves until the next reading
    return permit;
  }

  /** Feeds the measured conversion time of a finished job, ms. */
  observe(serviceMs: number): void {
    if (Number.isFinite(serviceMs) && serviceMs >= 0) this.#serviceMs.update(serviceMs, this.#clock.now());
  }

  /**
   * Expected wait in the queue for a job arriving behind `depth` others (waiting or
   * in progress), ms: nothing while a worker slot is free; otherwise one slot frees up
   * every `serviceMs / slots` on average, and the job needs `depth − slots + 1` of them.
   */
  expectedWaitMs(depth: number): number {
    if (depth < this.#slots) return 0;
    return ((depth - this.#slots + 1) * this.#serviceMs.value) / this.#slots;
  }

  /** Mean conversion time, ms. */
  get serviceMs(): number {
    return this.#serviceMs.value;
  }

  /** Last queue depth read. */
  get depth(): number {
    return this.#depthValue;
  }

  [Symbol.dispose](): void {
    this.limiter.close();
  }

  #readDepth(): Promise<number> {
    if (this.#clock.now() - this.#depthAt < this.#depthCacheMs) return Promise.resolve(this.#depthValue);
    this.#depthPending ??= this.#depth().then(
      (depth) => {
        this.#depthValue = depth;
        this.#depthAt = this.#clock.now();
        this.#depthPending = undefined;
        return depth;
      },
      (error) => {
        this.#depthPending = undefined;
        throw error;
      },
    );
    return this.#depthPending;
  }
}
