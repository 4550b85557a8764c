import { randomUUID } from 'node:crypto';
import type { Quota } from '@ballast/app-identity';
import {
  ConcurrencyLimiter,
  KeyedRateLimiter,
  type Permit,
  type RateLimitDecision,
  type RateLimiter,
  RedisRateLimiter,
  type RedisScriptClient,
} from '@ballast/backpressure';
import { type Clock, durationMs, finiteNumber, nonEmptyString, systemClock } from '@ballast/common';

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
}

/**
 * Enforces each tenant's plan: a rate limit (requests per second, GCRA from
 * @ballast/backpressure, `RedisRateLimiter` when shared) and a concurrent-job quota
 * (jobs waiting or in progress: a `ConcurrencyLimiter` per tenant in process, a leased
 * Redis semaphore when shared). One tenant's excess is refused at its own limits and
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
  readonly #rates = new Map<number, RateLimiter & { close?: () => void }>();
  readonly #jobs = new Map<string, ConcurrencyLimiter>();
  readonly #stats = { rateLimited: 0, jobsRefused: 0, jobsHeld: 0, redisErrors: 0 };

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: TenantQuotasOptions = {}) {
    this.#redis = options.redis;
    this.#prefix = nonEmptyString('prefix', options.prefix ?? 'ballast:quota:');
    this.#burstSeconds = finiteNumber('burstSeconds', options.burstSeconds ?? 1, { min: 0.001, max: 3600 });
    this.#redisTimeoutMs = durationMs('redisTimeoutMs', options.redisTimeoutMs ?? 250, { min: 1 });
    this.#clock = options.clock ?? systemClock;
  }

  /** Spends one request of the tenant's rate. */
  async rate(tenant: string, quota: Quota): Promise<RateLimitDecision> {
    const limiter = this.limiter(quota);
    let decision: RateLimitDecision;
    try {
      decision = this.#redis ? await this.#bounded(limiter.consume(tenant)) : await limiter.consume(tenant);
    } catch {
      this.#stats.redisErrors++;
      decision = { allowed: true, limit: limiter.policy.limit, remaining: 0, resetMs: 0, retryAfterMs: 0 };
    }
    if (!decision.allowed) this.#stats.rateLimited++;
    return decision;
  }

  /** The rate limiter enforcing `quota` (one per distinct rate, shared by the tenants on it). */
  limiter(quota: Quota): RateLimiter {
    const rps = quota.requestsPerSecond;
    let limiter = this.#rates.get(rps);
    if (limiter === undefined) {
      const limit = rps * this.#burstSeconds;
      // Token buckets: GCRA's check (tat - now <= burst × interval) can refuse the first
      // request of a burst-1 limit by a floating-point hair on a fractional clock.
      const common = {
        name: 'tenant',
        limit,
        windowMs: this.#burstSeconds * 1000,
        burst: Math.max(1, Math.floor(limit)),
        algorithm: 'tokenBucket' as const,
      };
      limiter = this.#redis
        ? new RedisRateLimiter({ ...common, client: this.#redis, prefix: this.#prefix })
        : new KeyedRateLimiter({ ...common, clock: this.#clock });
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
    const slot = this.#redis
      ? await this.#acquireShared(tenant, quota.concurrentJobs, holdMs)
      : this.#acquireLocal(tenant, quota.concurrentJobs);
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
        slot.release();
      },
    };
  }

  stats(): TenantQuotasStats {
    return { ...this.#stats };
  }

  close(): void {
    for (const limiter of this.#rates.values()) limiter.close?.();
    for (const limiter of this.#jobs.values()) limiter.close();
    this.#rates.clear();
    this.#jobs.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #bounded<T>(promise: Promise<T> | T): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${this.#redisTimeoutMs} ms`)), this.#redisTimeoutMs);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  #acquireLocal(tenant: string, limit: number): JobSlot | undefined {
    let limiter = this.#jobs.get(tenant);
    if (limiter === undefined || limiter.limit !== limit) {
      // A plan change: a new limiter at the new quota (slots held on the old one are released there).
      limiter = new ConcurrencyLimiter({ name: 'tenant-jobs', limit, maxQueue: 0, clock: this.#clock });
      this.#jobs.set(tenant, limiter);
    }
    const permit: Permit | undefined = limiter.tryAcquire();
    return permit && { release: () => permit.release({ ignore: true }) };
  }

  async #acquireShared(tenant: string, limit: number, holdMs: number): Promise<JobSlot | undefined> {
    const redis = this.#redis as RedisScriptClient;
    const key = `${this.#prefix}jobs:${tenant}`;
    const id = randomUUID();
    let granted: number;
    try {
      granted = Number(await this.#bounded(redis.eval(ACQUIRE, 1, key, String(limit), id, String(Math.ceil(holdMs)))));
    } catch {
      this.#stats.redisErrors++;
      return { release: () => {} };
    }
    if (granted !== 1) return undefined;
    return {
      release: () => {
        redis.eval(RELEASE, 1, key, id).catch(() => {
          this.#stats.redisErrors++; // the lease frees the slot at its deadline
        });
      },
    };
  }
}

/**
 * A counting semaphore with leases: a sorted set of holders scored by lease expiry
 * (server time). Expired holders are dropped before counting.
 * KEYS: the set. ARGV: limit, holder id, lease ms. Returns 1 when granted.
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
if redis.call('PTTL', KEYS[1]) < lease then redis.call('PEXPIRE', KEYS[1], lease) end
return 1
`;

/** KEYS: the set. ARGV: holder id. */
const RELEASE = `return redis.call('ZREM', KEYS[1], ARGV[1])`;
