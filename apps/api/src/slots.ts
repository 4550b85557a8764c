import { randomUUID } from 'node:crypto';
import {
  KeyedRateLimiter,
  type RateLimitDecision,
  type RateLimiter,
  type RateLimitPolicy,
  RedisRateLimiter,
  type RedisScriptClient,
} from '@ballast/backpressure';
import { type Clock, durationMs, integer, nonEmptyString, systemClock } from '@ballast/common';

/** Units wanted of one counted resource: `units` more of `key`, whose holders may not exceed `limit`. */
export interface SlotClaim {
  key: string;
  /** Holders allowed at once; a claim that would go over it is refused. */
  limit: number;
  units: number;
}

/** Units granted by {@link LeasedSlots.acquire}: release each once its work is over. */
export interface HeldSlots {
  /** Gives back `count` units of claim `index` (all it still holds by default). Idempotent per unit. */
  release(index: number, count?: number): void;
  /** Gives back every unit still held. */
  releaseAll(): void;
}

/** Options of {@link LeasedSlots}. */
export interface LeasedSlotsOptions {
  /**
   * An ioredis client: the counts are then shared by every process using the same Redis
   * (several API servers). Omit to count in this process only.
   */
  redis?: RedisScriptClient;
  /** Prefix of the Redis keys. @default 'ballast:slots:' */
  prefix?: string;
  /** A Redis call slower than this counts as a Redis failure, ms. @default 250 */
  redisTimeoutMs?: number;
}

/**
 * Counting semaphores over named keys, taken several at once, all or nothing: a job
 * slot of its client and a costly-work slot of the client and of the whole system, say.
 * In process, plain counters; through Redis, one sorted set of holders per key, each
 * holder scored by its lease's expiry (Redis's clock), so a slot whose API server died
 * frees itself when its lease ends.
 *
 * Availability first: when Redis fails or is slow, {@link acquire} grants the claim
 * without counting it (`redisErrors` counts how often), since the API's own admission
 * control still bounds the load.
 */
export class LeasedSlots {
  readonly #redis: RedisScriptClient | undefined;
  readonly #prefix: string;
  readonly #redisTimeoutMs: number;
  readonly #local = new Map<string, number>();
  #redisErrors = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: LeasedSlotsOptions = {}) {
    this.#redis = options.redis;
    this.#prefix = nonEmptyString('prefix', options.prefix ?? 'ballast:slots:');
    this.#redisTimeoutMs = durationMs('redisTimeoutMs', options.redisTimeoutMs ?? 250, { min: 1 });
  }

  /** True when the counts are shared through Redis. */
  get shared(): boolean {
    return this.#redis !== undefined;
  }

  /** Redis failures answered by granting, since creation. */
  get redisErrors(): number {
    return this.#redisErrors;
  }

  /** Units held now of `key`, in this process's view (in-process mode: exact; Redis mode: 0). */
  held(key: string): number {
    return this.#local.get(key) ?? 0;
  }

  /**
   * Takes every claim or none: `{ refused }` names the first claim that would go over its
   * limit. `holdMs` bounds how long a Redis slot outlives a holder that never releases it.
   */
  async acquire(claims: readonly SlotClaim[], holdMs: number): Promise<SlotGrant> {
    for (const claim of claims) {
      integer('limit', claim.limit, { min: 0 });
      integer('units', claim.units, { min: 0 });
    }
    return this.#redis ? this.#acquireShared(this.#redis, claims, holdMs) : this.#acquireLocal(claims);
  }

  #acquireLocal(claims: readonly SlotClaim[]): SlotGrant {
    const refused = claims.findIndex((c) => c.units > 0 && this.held(c.key) + c.units > c.limit);
    if (refused !== -1) return { refused };
    for (const c of claims) if (c.units > 0) this.#local.set(c.key, this.held(c.key) + c.units);
    return grant(
      claims.map((c) => c.units),
      (index, count) => {
        const key = (claims[index] as SlotClaim).key;
        const left = this.held(key) - count;
        if (left > 0) this.#local.set(key, left);
        else this.#local.delete(key);
      },
    );
  }

  async #acquireShared(redis: RedisScriptClient, claims: readonly SlotClaim[], holdMs: number): Promise<SlotGrant> {
    const keys = claims.map((c) => `${this.#prefix}${c.key}`);
    // One member per unit: `<holder>:<claim>:<unit>`, so units can be given back one by one.
    const holder = randomUUID();
    const args = claims.flatMap((c) => [String(c.limit), String(c.units)]);
    let refusedAt: number;
    try {
      refusedAt = Number(
        await withinMs(
          this.#redisTimeoutMs,
          redis.eval(ACQUIRE, keys.length, ...keys, holder, String(Math.max(1, Math.ceil(holdMs))), ...args),
        ),
      );
    } catch {
      this.#redisErrors++;
      return grant(
        claims.map(() => 0),
        () => {},
      );
    }
    if (refusedAt > 0) return { refused: refusedAt - 1 };
    const next = claims.map((c) => c.units);
    return grant(
      claims.map((c) => c.units),
      (index, count) => {
        const members: string[] = [];
        for (let i = 0; i < count; i++) members.push(`${holder}:${index}:${--(next[index] as number)}`);
        redis.eval(RELEASE, 1, keys[index] as string, ...members).catch(() => {
          this.#redisErrors++; // the lease frees them at its end
        });
      },
    );
  }
}

/** `promise`, or a rejection once `ms` have passed without it settling (a slow Redis answered as a failed one). */
/** Token buckets by key ({@link tokenBuckets}): a `RateLimiter` whose Redis failures admit. */
export interface TokenBuckets extends RateLimiter {
  readonly policy: RateLimitPolicy;
  consume(key: string, cost?: number): Promise<RateLimitDecision>;
  /** Redis failures (or answers slower than `redisTimeoutMs`) answered by admitting, since creation. */
  readonly redisErrors: number;
  close(): void;
}

/**
 * Token buckets by key (tenant, client address), counted in this process or, given an
 * ioredis client, over every API server on the same Redis. Availability first: a Redis call
 * that fails or takes longer than `redisTimeoutMs` admits, and is counted in `redisErrors`.
 * Token buckets rather than GCRA: GCRA's check (tat − now ≤ burst × interval) can refuse the
 * first request of a burst-1 limit by a floating-point hair on a fractional clock.
 */
export function tokenBuckets(
  rate: { name: string; limit: number; windowMs: number; burst: number },
  counting: { redis?: RedisScriptClient; prefix: string; redisTimeoutMs: number; clock?: Clock },
): TokenBuckets {
  const common = { ...rate, algorithm: 'tokenBucket' as const };
  const { redis, redisTimeoutMs } = counting;
  const limiter: RateLimiter & { close?: () => void } = redis
    ? new RedisRateLimiter({ ...common, client: redis, prefix: counting.prefix })
    : new KeyedRateLimiter({ ...common, clock: counting.clock ?? systemClock, maxKeys: 100_000 });
  let redisErrors = 0;
  return {
    policy: limiter.policy,
    async consume(key, cost = 1) {
      if (!redis) return limiter.consume(key, cost);
      try {
        return await withinMs(redisTimeoutMs, limiter.consume(key, cost));
      } catch {
        redisErrors++;
        return { allowed: true, limit: limiter.policy.limit, remaining: 0, resetMs: 0, retryAfterMs: 0 };
      }
    },
    get redisErrors() {
      return redisErrors;
    },
    close: () => limiter.close?.(),
  };
}

export function withinMs<T>(ms: number, promise: Promise<T> | T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`Redis did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** What {@link LeasedSlots.acquire} answers: the units held, or the index of the first claim refused. */
export type SlotGrant = { held: HeldSlots; refused?: undefined } | { held?: undefined; refused: number };

/** Bookkeeping of granted units: each given back at most once. */
function grant(units: number[], giveBack: (index: number, count: number) => void): SlotGrant {
  const left = [...units];
  const release = (index: number, count?: number): void => {
    const have = left[index] ?? 0;
    const n = Math.min(have, count ?? have);
    if (n <= 0) return;
    left[index] = have - n;
    giveBack(index, n);
  };
  return {
    held: {
      release,
      releaseAll: () => {
        for (let i = 0; i < left.length; i++) release(i);
      },
    },
  };
}

/**
 * Counting semaphores with leases, all or nothing: a sorted set of holders per key, scored
 * by lease expiry (server time); expired holders are dropped before counting.
 * KEYS: the sets. ARGV: holder id, lease ms, then limit and units per key.
 * Returns 0 when every claim was granted, else the (1-based) index of the first key refused (nothing taken).
 */
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
for i = 1, #KEYS do
  local units = tonumber(ARGV[2 + 2 * i])
  if units > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    if redis.call('ZCARD', KEYS[i]) + units > tonumber(ARGV[1 + 2 * i]) then return i end
  end
end
for i = 1, #KEYS do
  local units = tonumber(ARGV[2 + 2 * i])
  for u = 0, units - 1 do
    redis.call('ZADD', KEYS[i], now + lease, ARGV[1] .. ':' .. (i - 1) .. ':' .. u)
  end
  if units > 0 and redis.call('PTTL', KEYS[i]) < lease then redis.call('PEXPIRE', KEYS[i], lease) end
end
return 0
`;

/** KEYS: the set. ARGV: the members to remove. */
const RELEASE = `return redis.call('ZREM', KEYS[1], unpack(ARGV))`;
