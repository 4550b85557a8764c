import type { RateLimitDecision, RedisScriptClient } from '@ballast/backpressure';
import { type Clock, finiteNumber, InvalidOptionError, nonEmptyString } from '@ballast/common';
import { type TokenBuckets, tokenBuckets } from './slots.ts';

/**
 * A client's budget of conversion cost: how much indicative conversion time (see
 * `jobCostMs`) it may book, sustained and at once. The workers convert about
 * `workerSlots` × 1000 ms of it per second; `msPerSec` is the client's share of that.
 */
export interface CostBudgetOptions {
  /** Indicative conversion cost one client may book per second, sustained, ms/s (> 0). */
  msPerSec: number;
  /**
   * Cost one client may book back to back after a quiet spell, ms: the bucket's size, and
   * so also the dearest single request it may send (422 `ERR_BALLAST_TOO_COSTLY` beyond).
   * @default 10 × msPerSec
   */
  burstMs?: number;
}

/** Where a {@link CostBudget} counts: in this process, or in Redis for every API server on it. */
export interface CostBudgetCounting {
  /** An ioredis client: the buckets are shared by every API server on the same Redis. */
  redis?: RedisScriptClient;
  /** Prefix of the Redis keys. */
  prefix?: string;
  /** A Redis call slower than this is answered as a failure (the request is admitted), ms. @default 250 */
  redisTimeoutMs?: number;
  /** Clock of the in-process buckets. @default systemClock */
  clock?: Clock;
}

/**
 * A token bucket of indicative conversion cost per client (a tenant, or an anonymous
 * client's address): each request books its jobs' cost before it is admitted, and is
 * refused while its client's bucket does not hold that much. One client therefore cannot
 * book more than its share of the workers' time however it spreads its requests, and no
 * single request of it can cost more than the bucket holds.
 *
 * The charge is the indicative cost from the request's parameters, not the conversion's
 * measured CPU: it is known before the body is read, and it stays charged when the job
 * fails or is stopped at its deadline (the worker's time was taken all the same).
 *
 * Availability first: when Redis fails, the request is admitted and counted in
 * `redisErrors`; the fair share's other limits and admission control still bound load.
 */
export class CostBudget implements Disposable {
  readonly msPerSec: number;
  readonly burstMs: number;
  readonly #buckets: TokenBuckets;

  /** @throws {InvalidOptionError} naming the first invalid option (prefixed with `name`). */
  constructor(name: string, options: CostBudgetOptions, counting: CostBudgetCounting = {}) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError(name, 'an object { msPerSec, burstMs? } or false', options);
    }
    this.msPerSec = finiteNumber(`${name}.msPerSec`, options.msPerSec, { min: 0.001 });
    this.burstMs = Math.floor(finiteNumber(`${name}.burstMs`, options.burstMs ?? 10 * this.msPerSec, { min: 1 }));
    this.#buckets = tokenBuckets(
      { name: nonEmptyString('name', name), limit: this.msPerSec, windowMs: 1000, burst: this.burstMs },
      {
        redis: counting.redis,
        prefix: counting.prefix ?? '{ballast:fair}:',
        redisTimeoutMs: finiteNumber('redisTimeoutMs', counting.redisTimeoutMs ?? 250, { min: 1 }),
        clock: counting.clock,
      },
    );
  }

  /** True when a request of `costMs` can ever fit in one client's bucket. */
  fits(costMs: number): boolean {
    return costMs <= this.burstMs;
  }

  /** Books `costMs` (at most `burstMs`) of `client`'s budget if it holds that much. A Redis failure admits. */
  book(client: string, costMs: number): Promise<RateLimitDecision> {
    return this.#buckets.consume(client, Math.min(this.burstMs, Math.max(0, costMs)));
  }

  /** Redis failures answered by admitting, since creation. */
  get redisErrors(): number {
    return this.#buckets.redisErrors;
  }

  [Symbol.dispose](): void {
    this.#buckets.close();
  }
}
