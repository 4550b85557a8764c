import { createHash } from 'node:crypto';
import { declareJoinsScope, nonEmptyString, oneOf, type Policy, type PolicyContext } from '@ballast/common';
import {
  checkCost,
  executeRateLimited,
  type RateAlgorithm,
  type RateConfig,
  type RateLimitDecision,
  type RateLimitExecuteOptions,
  type RateLimiter,
  type RateLimitOptions,
  type RateLimitPolicy,
  rateConfig,
} from './rate-limit.ts';

/**
 * Arguments, server time and the on-time tolerance (`toleranceMs` of rate-limit.ts: 1 µs, or
 * half an interval when shorter), common to both scripts. ARGV: interval ms, burst, cost.
 * State is stored with `%.17g`, which a double survives unchanged, so only float rounding in
 * the arithmetic itself remains for the tolerance to absorb.
 */
const PREAMBLE = `
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local slack = math.min(0.001, interval / 2)
`;

/**
 * GCRA in one atomic script. Time comes from the Redis server (`TIME`), so callers on
 * machines with skewed clocks share one timeline. State: one string key holding the
 * theoretical arrival time (ms), expiring when it is in the past.
 * ARGV: interval ms, burst, cost. Returns: allowed, remaining, resetMs, retryAfterMs.
 */
const GCRA = `${PREAMBLE}local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local ahead = tat - now
local allowed = 0
local retry = 0
if ahead <= (burst - cost) * interval + slack then
  tat = tat + cost * interval
  ahead = tat - now
  allowed = 1
  redis.call('SET', KEYS[1], string.format('%.17g', tat), 'PX', math.max(1, math.ceil(ahead)))
else
  retry = math.ceil(ahead - slack + (cost - burst) * interval)
end
ahead = ahead - slack
return {allowed, math.max(0, math.floor(burst - ahead / interval)), math.max(0, math.ceil(ahead)), retry}
`;

/**
 * A token bucket in one atomic script; a hash with `tokens` and `ts` (ms, server time).
 * ARGV: interval ms, burst, cost. Returns: allowed, remaining, resetMs, retryAfterMs.
 */
const TOKEN_BUCKET = `${PREAMBLE}local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or burst
local ts = tonumber(state[2]) or now
if now > ts then tokens = math.min(burst, tokens + (now - ts) / interval) end
local allowed = 0
local retry = 0
local grace = slack / interval
if tokens + grace >= cost then
  tokens = math.max(0, tokens - cost)
  allowed = 1
else
  retry = math.ceil((cost - tokens - grace) * interval)
end
local reset = math.max(0, math.ceil((burst - tokens - grace) * interval))
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'ts', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((burst - tokens) * interval)))
return {allowed, math.floor(tokens + grace), reset, retry}
`;

/** The two ioredis methods the limiter uses; an ioredis `Redis` or `Cluster` fits. */
export interface RedisScriptClient {
  evalsha(sha: string, numKeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
}

/** Options of {@link RedisRateLimiter}. */
export interface RedisRateLimiterOptions extends RateLimitOptions {
  /** An ioredis client (standalone, Sentinel-backed or `Cluster`); the limiter does not close it. */
  client: RedisScriptClient;
  /** The algorithm. @default 'gcra' */
  algorithm?: RateAlgorithm;
  /** Prefix of every Redis key; the key is `prefix + name + ':' + key`. @default 'ballast:rl:' */
  prefix?: string;
  /**
   * What to answer when Redis fails: `'throw'` rejects with the Redis error, `'allow'`
   * admits (fail open), `'deny'` refuses (fail closed). @default 'throw'
   */
  onError?: 'throw' | 'allow' | 'deny';
}

/** A snapshot of a {@link RedisRateLimiter}'s decisions in this process. */
export interface RedisRateLimiterStats {
  name: string;
  allowed: number;
  limited: number;
  /** Calls on which Redis failed. */
  errors: number;
}

/**
 * A rate limit shared by every process that uses the same Redis: one atomic Lua
 * script per decision (`EVALSHA`, falling back to `EVAL` once after a script flush),
 * one key per limited key, server time as the clock. Correct under any number of
 * concurrent callers: the script runs alone on the server.
 *
 * Works with Redis Cluster, as each decision touches one key.
 *
 * @example
 * ```ts
 * const limiter = new RedisRateLimiter({ client: new Redis(url), limit: 600, windowMs: 60_000, burst: 50 });
 * const decision = await limiter.consume(`tenant:${tenantId}`);
 * ```
 */
export class RedisRateLimiter implements RateLimiter, Policy {
  static {
    declareJoinsScope(RedisRateLimiter);
  }

  /** What the limiter enforces, as advertised in `RateLimit-Policy`. */
  readonly policy: RateLimitPolicy;
  readonly #config: RateConfig;
  readonly #client: RedisScriptClient;
  readonly #script: string;
  readonly #sha: string;
  readonly #prefix: string;
  readonly #onError: 'throw' | 'allow' | 'deny';
  #allowed = 0;
  #limited = 0;
  #errors = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: RedisRateLimiterOptions) {
    this.#config = rateConfig(options);
    if (!options.client || typeof options.client.evalsha !== 'function') {
      throw new TypeError('client must be an ioredis client');
    }
    this.#client = options.client;
    const algorithm = oneOf('algorithm', options.algorithm ?? 'gcra', ['tokenBucket', 'gcra']);
    this.#script = algorithm === 'gcra' ? GCRA : TOKEN_BUCKET;
    this.#sha = createHash('sha1').update(this.#script).digest('hex');
    this.#prefix = `${options.prefix === undefined ? 'ballast:rl:' : nonEmptyString('prefix', options.prefix)}${this.#config.name}:`;
    this.#onError = oneOf('onError', options.onError ?? 'throw', ['throw', 'allow', 'deny']);
    this.policy = { name: this.#config.name, limit: this.#config.limit, windowMs: this.#config.windowMs };
  }

  /**
   * Spends `cost` of `key`'s quota if it has it, atomically across every caller.
   * @throws {InvalidOptionError} (rejection) when `cost` is not a number from 0 to `burst`;
   * the Redis error when Redis fails and `onError` is `'throw'`.
   */
  /**
   * Runs `fn(context)` if `key` has `cost` of quota left (the {@link Policy} contract).
   * @throws {ShedError} `rateLimited` (rejection) with `retryAfterMs` when it has not.
   */
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: RateLimitExecuteOptions<T>): Promise<T> {
    return executeRateLimited(this, fn, options);
  }

  async consume(key: string, cost = 1): Promise<RateLimitDecision> {
    const redisKey = this.#prefix + key;
    const args = [String(this.#config.intervalMs), String(this.#config.burst), String(checkCost(cost, this.#config.burst))];
    let reply: unknown;
    try {
      try {
        reply = await this.#client.evalsha(this.#sha, 1, redisKey, ...args);
      } catch (error) {
        if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
        reply = await this.#client.eval(this.#script, 1, redisKey, ...args);
      }
    } catch (error) {
      this.#errors++;
      if (this.#onError === 'throw') throw error;
      const allowed = this.#count(this.#onError === 'allow');
      return { allowed, limit: this.#config.limit, remaining: 0, resetMs: 0, retryAfterMs: allowed ? 0 : this.#config.intervalMs };
    }
    const [allowed, remaining, resetMs, retryAfterMs] = reply as [number, number, number, number];
    return { allowed: this.#count(allowed === 1), limit: this.#config.limit, remaining, resetMs, retryAfterMs };
  }

  /** Decisions taken by this process. */
  stats(): RedisRateLimiterStats {
    return { name: this.#config.name, allowed: this.#allowed, limited: this.#limited, errors: this.#errors };
  }

  #count(allowed: boolean): boolean {
    if (allowed) this.#allowed++;
    else this.#limited++;
    return allowed;
  }
}
