import type { Quota } from '@ballast/app-identity';
import type { RateLimitDecision, RateLimiter, RedisScriptClient } from '@ballast/backpressure';
import { type Clock, durationMs, finiteNumber, nonEmptyString, systemClock } from '@ballast/common';
import { LeasedSlots, type TokenBuckets, tokenBuckets } from './slots.ts';
import { TenantLanes, type TenantLanesStats } from './tenant-lanes.ts';

/** Options of {@link TenantQuotas}. */
export interface TenantQuotasOptions {
  /**
   * An ioredis client: rate limits and concurrent-job counts are then shared by every API
   * server using the same Redis (the distributed mode). Omit for limits per process (the
   * embedded mode, where every API server shares this object).
   */
  redis?: RedisScriptClient;
  /** Prefix of the Redis keys. @default 'ballast:quota:' */
  prefix?: string;
  /** A Redis call slower than this is answered as a Redis failure (admitted), ms. @default 250 */
  redisTimeoutMs?: number;
  /** Requests a tenant may send back to back, in seconds of its rate (bucket size). @default 1 */
  burstSeconds?: number;
  /**
   * Conversions the workers run at once, system-wide: each active tenant's fair share of
   * them bounds its jobs in the queue ({@link TenantLanes}); its further jobs wait in its
   * own lane. @default os.availableParallelism()
   */
  workerSlots?: number;
  clock?: Clock;
}

/** A concurrent-job slot held by one job; release it when the job has reached its final state. */
export interface JobSlot {
  release(): void;
}

/** Counters of a {@link TenantQuotas}. */
export interface TenantQuotasStats {
  /** Requests refused by a tenant's rate limit. */
  rateLimited: number;
  /** Jobs refused by a tenant's concurrent-job quota. */
  jobsRefused: number;
  /** Jobs holding a slot now (this process's view). */
  jobsHeld: number;
  /** Redis failures, each answered by admitting (availability first). */
  redisErrors: number;
  /** The tenants' lanes in front of the queue (this process's view). */
  lanes: TenantLanesStats;
}

/**
 * Enforces each tenant's plan: a rate limit (requests per second, GCRA from
 * @ballast/backpressure, `RedisRateLimiter` when shared) and a concurrent-job quota
 * (jobs waiting or in progress: {@link LeasedSlots}, counted in process or through Redis). One tenant's excess is refused at its own limits and
 * never takes capacity from another.
 *
 * Availability first: when Redis fails, requests are admitted (and counted in
 * `redisErrors`) rather than refused; the API's own admission control still bounds load.
 */
export class TenantQuotas implements Disposable {
  readonly #redis: RedisScriptClient | undefined;
  readonly #prefix: string;
  readonly #burstSeconds: number;
  readonly #redisTimeoutMs: number;
  readonly #clock: Clock;
  readonly #rates = new Map<number, TokenBuckets>();
  readonly #jobs: LeasedSlots;
  /** Each tenant's fair share of the worker slots, in front of the queue. */
  readonly lanes: TenantLanes;
  readonly #stats = { rateLimited: 0, jobsRefused: 0, jobsHeld: 0 };

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: TenantQuotasOptions = {}) {
    this.#redis = options.redis;
    this.#prefix = nonEmptyString('prefix', options.prefix ?? 'ballast:quota:');
    this.#burstSeconds = finiteNumber('burstSeconds', options.burstSeconds ?? 1, { min: 0.001, max: 3600 });
    this.#redisTimeoutMs = durationMs('redisTimeoutMs', options.redisTimeoutMs ?? 250, { min: 1 });
    this.#clock = options.clock ?? systemClock;
    this.#jobs = new LeasedSlots({ redis: this.#redis, prefix: this.#prefix, redisTimeoutMs: this.#redisTimeoutMs });
    this.lanes = new TenantLanes({ workerSlots: options.workerSlots });
  }

  /** Spends one request of the tenant's rate. */
  async rate(tenant: string, quota: Quota): Promise<RateLimitDecision> {
    const decision = await this.limiter(quota).consume(tenant);
    if (!decision.allowed) this.#stats.rateLimited++;
    return decision;
  }

  /** The rate limiter enforcing `quota` (one per distinct rate, shared by the tenants on it). */
  limiter(quota: Quota): RateLimiter {
    return this.#limiter(quota);
  }

  #limiter(quota: Quota): TokenBuckets {
    const rps = quota.requestsPerSecond;
    let limiter = this.#rates.get(rps);
    if (limiter === undefined) {
      const limit = rps * this.#burstSeconds;
      limiter = tokenBuckets(
        { name: 'tenant', limit, windowMs: this.#burstSeconds * 1000, burst: Math.max(1, Math.floor(limit)) },
        { redis: this.#redis, prefix: this.#prefix, redisTimeoutMs: this.#redisTimeoutMs, clock: this.#clock },
      );
      this.#rates.set(rps, limiter);
    }
    return limiter;
  }

  /**
   * Takes one of the tenant's concurrent-job slots, or answers undefined when all are
   * held. `holdMs` bounds how long a slot can outlive its holder (the job's deadline):
   * in Redis, a slot whose API server died is freed then.
   */
  async acquireJob(tenant: string, quota: Quota, holdMs: number): Promise<JobSlot | undefined> {
    const { held: slot } = await this.#jobs.acquire([{ key: `jobs:${tenant}`, limit: quota.concurrentJobs, units: 1 }], holdMs);
    if (slot === undefined) {
      this.#stats.jobsRefused++;
      return undefined;
    }
    this.#stats.jobsHeld++;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#stats.jobsHeld--;
        slot.releaseAll();
      },
    };
  }

  stats(): TenantQuotasStats {
    let redisErrors = this.#jobs.redisErrors;
    for (const limiter of this.#rates.values()) redisErrors += limiter.redisErrors;
    return { ...this.#stats, redisErrors, lanes: this.lanes.stats() };
  }

  close(): void {
    for (const limiter of this.#rates.values()) limiter.close();
    this.#rates.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
