import {
  CallScope,
  type Clock,
  declareJoinsScope,
  durationMs,
  Emitter,
  finiteNumber,
  InvalidOptionError,
  integer,
  type Listener,
  nonEmptyString,
  oneOf,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  systemClock,
  type Unsubscribe,
  uncancellableContext,
} from '@ballast/common';
import { shedError } from './errors.ts';

/** The answer of a rate limiter to one request. */
export interface RateLimitDecision {
  /** True when the request may proceed. */
  allowed: boolean;
  /** The quota: requests allowed per window. */
  limit: number;
  /** Requests that could still be made right now (after this one, when allowed). */
  remaining: number;
  /** Time until the quota is fully restored, ms. */
  resetMs: number;
  /** Time until this request would be allowed, ms; 0 when allowed. */
  retryAfterMs: number;
}

/** A rate-limit policy, as advertised in the IETF `RateLimit-Policy` header. */
export interface RateLimitPolicy {
  /** The policy name, e.g. `default` or `per-tenant`. */
  readonly name: string;
  /** Requests allowed per window (the `q` parameter). */
  readonly limit: number;
  /** The window, ms (the `w` parameter, in seconds on the wire). */
  readonly windowMs: number;
}

/** Anything that rate-limits by key: {@link KeyedRateLimiter}, {@link RedisRateLimiter} or your own. */
export interface RateLimiter {
  /** What the limiter enforces, as advertised in `RateLimit-Policy`. */
  readonly policy: RateLimitPolicy;
  /** Spends `cost` units of `key`'s quota if it has them. */
  consume(key: string, cost?: number): RateLimitDecision | Promise<RateLimitDecision>;
}

/** Per-call options of a rate limiter's `execute` ({@link KeyedRateLimiter}, {@link RedisRateLimiter}). */
export interface RateLimitExecuteOptions<T = unknown> extends PolicyExecuteOptions<T> {
  /** Whose quota the call spends: a tenant, an API key, a client IP. @default 'global' */
  key?: string;
  /** Units of quota the call costs. @default 1 */
  cost?: number;
}

/**
 * Runs `fn(context)` when `limiter` grants `cost` of `key`'s quota, else rejects with a
 * `ShedError('rateLimited')` carrying the decision's `retryAfterMs`. The {@link Policy}
 * contract of every rate limiter; what `fn` does afterwards is not the limiter's concern.
 */
export function executeRateLimited<T>(
  limiter: RateLimiter,
  fn: (context: PolicyContext) => T | PromiseLike<T>,
  options?: RateLimitExecuteOptions<T>,
): Promise<T> {
  if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('fn', 'a function', fn));
  // Nothing here aborts the work, so no scope of its own: an enclosing policy's context, or
  // the caller's signal as is, reaches `fn`.
  let context: PolicyContext = uncancellableContext;
  if (CallScope.isScope(options)) {
    if (options.aborted) return Promise.reject(options.reason);
    context = options;
  } else if (options?.signal != null) {
    const signal = options.signal;
    if (typeof (signal as Partial<AbortSignal>).addEventListener !== 'function') {
      return Promise.reject(new InvalidOptionError('signal', 'an AbortSignal', signal));
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    context = { attempt: 1, signal };
  }
  const admit = (decision: RateLimitDecision): Promise<T> => {
    if (!decision.allowed) return Promise.reject(shedError('rateLimited', decision.retryAfterMs));
    try {
      return Promise.resolve(fn(context));
    } catch (error) {
      return Promise.reject(error);
    }
  };
  let decision: RateLimitDecision | Promise<RateLimitDecision>;
  try {
    decision = limiter.consume(options?.key ?? 'global', options?.cost ?? 1);
  } catch (error) {
    return Promise.reject(error);
  }
  return decision instanceof Promise ? decision.then(admit) : admit(decision);
}

/** Which algorithm limits the rate. Both are O(1) and admit the same long-run rate. */
export type RateAlgorithm = 'tokenBucket' | 'gcra';

/** Options shared by every rate limiter. */
export interface RateLimitOptions {
  /** Requests allowed per `windowMs` (the sustained rate is `limit / windowMs`). */
  limit: number;
  /** The window the limit applies to, ms. @default 1000 */
  windowMs?: number;
  /** Requests allowed back to back after an idle period (bucket capacity). @default limit */
  burst?: number;
  /** The policy name, for headers and events. @default 'default' */
  name?: string;
  /** Time source. @default systemClock */
  clock?: Clock;
}

/** Validated rate-limit settings. */
export interface RateConfig {
  readonly name: string;
  readonly limit: number;
  readonly windowMs: number;
  readonly burst: number;
  /** Milliseconds per request at the sustained rate. */
  readonly intervalMs: number;
  readonly clock: Clock;
}

/** Validates {@link RateLimitOptions}. */
export function rateConfig(options: RateLimitOptions): RateConfig {
  if (options === null || typeof options !== 'object') throw new TypeError('rate limit options are required');
  const limit = finiteNumber('limit', options.limit);
  if (!(limit > 0)) throw new InvalidOptionError('limit', 'a finite number > 0', limit);
  const windowMs = durationMs('windowMs', options.windowMs ?? 1000, { min: 1 });
  const burst = integer('burst', options.burst ?? Math.max(1, Math.ceil(limit)), { min: 1 });
  return {
    name: nonEmptyString('name', options.name ?? 'default'),
    limit,
    windowMs,
    burst,
    intervalMs: windowMs / limit,
    clock: options.clock ?? systemClock,
  };
}

/**
 * How early a request may arrive and still be on time, ms: one microsecond, or half an
 * interval when that is shorter. Rates whose interval is not a whole number of ms (1000 / 3)
 * and clocks that read fractions of a ms put float rounding error into every comparison; a
 * request that arrives exactly on time must not be refused because of it. Below half an
 * interval the tolerance never admits more than `burst` at once, and it never raises the
 * long-run rate: every admission still advances the state by a full `cost` of intervals.
 */
export function toleranceMs(intervalMs: number): number {
  return intervalMs / 2 < 0.001 ? intervalMs / 2 : 0.001;
}

/**
 * Validates a request cost: a finite number from 0 to `burst`. A cost above the burst could
 * never be granted, so it is a caller error rather than a refusal with a meaningless `Retry-After`.
 */
export function checkCost(cost: number, burst: number): number {
  if (!(cost >= 0 && cost <= burst)) finiteNumber('cost', cost, { min: 0, max: burst });
  return cost;
}

/**
 * A token bucket: holds up to `burst` tokens, refilled continuously at `limit` per
 * `windowMs`; each request takes `cost` tokens. O(1), no timer: refill is computed
 * from the elapsed time when a request arrives.
 *
 * @example
 * ```ts
 * const bucket = new TokenBucket({ limit: 100, windowMs: 1000, burst: 20 });
 * if (!bucket.tryTake()) return new Response('slow down', { status: 429 });
 * ```
 */
export class TokenBucket {
  /** The validated settings. */
  readonly config: RateConfig;
  /** {@link toleranceMs} in tokens. */
  readonly #slack: number;
  #tokens: number;
  #last: number;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: RateLimitOptions | RateConfig) {
    this.config = 'intervalMs' in options ? options : rateConfig(options);
    this.#slack = toleranceMs(this.config.intervalMs) / this.config.intervalMs;
    this.#tokens = this.config.burst;
    this.#last = this.config.clock.now();
  }

  /** Tokens available now. */
  get tokens(): number {
    this.#refill(this.config.clock.now());
    return this.#tokens;
  }

  /**
   * Takes `cost` tokens if available. The allocation-free fast path.
   * @throws {InvalidOptionError} when `cost` is not a number from 0 to `burst`.
   */
  tryTake(cost = 1): boolean {
    this.#refill(this.config.clock.now());
    if (this.#tokens + this.#slack >= checkCost(cost, this.config.burst)) {
      this.#tokens = this.#tokens > cost ? this.#tokens - cost : 0;
      return true;
    }
    return false;
  }

  /** Like {@link tryTake}, with the details a `RateLimit` header needs. */
  consume(cost = 1): RateLimitDecision {
    const allowed = this.tryTake(cost);
    const { limit, burst, intervalMs } = this.config;
    // The tolerance in tokens, so that a whole token short by a rounding error counts as whole.
    const tokens = this.#tokens + this.#slack;
    return {
      allowed,
      limit,
      remaining: Math.floor(tokens),
      resetMs: Math.max(0, Math.ceil((burst - tokens) * intervalMs)),
      retryAfterMs: allowed ? 0 : Math.ceil((cost - tokens) * intervalMs),
    };
  }

  /** True when the bucket is full: forgetting it loses nothing. */
  idle(now: number = this.config.clock.now()): boolean {
    this.#refill(now);
    return this.#tokens >= this.config.burst;
  }

  #refill(now: number): void {
    const elapsed = now - this.#last;
    if (elapsed <= 0) return;
    this.#last = now;
    const tokens = this.#tokens + elapsed / this.config.intervalMs;
    this.#tokens = tokens > this.config.burst ? this.config.burst : tokens;
  }
}

/**
 * The generic cell rate algorithm (GCRA, as in ATM networks and Redis-cell): keeps a
 * single number, the theoretical arrival time (TAT) of the next request. A request is
 * allowed when taking it would not push the TAT more than `burst` intervals ahead of
 * now. Same long-run behaviour as a token bucket in half the state, which is why the
 * Redis variant stores one key per client.
 */
export class Gcra {
  /** The validated settings. */
  readonly config: RateConfig;
  /** {@link toleranceMs}. */
  readonly #slackMs: number;
  #tat: number;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: RateLimitOptions | RateConfig) {
    this.config = 'intervalMs' in options ? options : rateConfig(options);
    this.#slackMs = toleranceMs(this.config.intervalMs);
    this.#tat = Number.NEGATIVE_INFINITY;
  }

  /**
   * Takes `cost` units if the rate allows. The allocation-free fast path.
   * @throws {InvalidOptionError} when `cost` is not a number from 0 to `burst`.
   */
  tryTake(cost = 1): boolean {
    const now = this.config.clock.now();
    const { intervalMs, burst } = this.config;
    const tat = this.#tat > now ? this.#tat : now;
    // Compare how far the TAT already is ahead of now (exactly 0 for a fresh or idle key)
    // with the allowance left for this cost, rather than subtracting now back out of a sum.
    if (tat - now > (burst - checkCost(cost, burst)) * intervalMs + this.#slackMs) return false;
    this.#tat = tat + cost * intervalMs;
    return true;
  }

  /** Like {@link tryTake}, with the details a `RateLimit` header needs. */
  consume(cost = 1): RateLimitDecision {
    const allowed = this.tryTake(cost);
    const now = this.config.clock.now();
    const { limit, burst, intervalMs } = this.config;
    // Less the tolerance, so that a TAT ahead by a whole interval plus a rounding error counts as one interval.
    const ahead = Math.max(0, this.#tat - now) - this.#slackMs;
    return {
      allowed,
      limit,
      remaining: Math.max(0, Math.floor(burst - ahead / intervalMs)),
      resetMs: Math.max(0, Math.ceil(ahead)),
      retryAfterMs: allowed ? 0 : Math.ceil(ahead + (cost - burst) * intervalMs),
    };
  }

  /** True when the TAT is in the past: forgetting it loses nothing. */
  idle(now: number = this.config.clock.now()): boolean {
    return this.#tat <= now;
  }
}

/** Options of {@link KeyedRateLimiter}. */
export interface KeyedRateLimiterOptions extends RateLimitOptions {
  /** The algorithm. @default 'gcra' */
  algorithm?: RateAlgorithm;
  /**
   * Keys tracked at once; beyond it the least recently used key is forgotten (a
   * forgotten key starts again with a full burst). Bounds memory under key floods. @default 10000
   */
  maxKeys?: number;
}

/** Events of a {@link KeyedRateLimiter}. */
export interface RateLimiterEvents {
  /** A request was refused. */
  shed: { name: string; key: string; reason: 'rateLimited'; retryAfterMs: number };
  /** A key was forgotten to stay within `maxKeys` while it still held state. */
  evict: { name: string; key: string };
}

/** A snapshot of a {@link KeyedRateLimiter}. */
export interface KeyedRateLimiterStats {
  name: string;
  keys: number;
  allowed: number;
  limited: number;
  evicted: number;
}

/**
 * A rate limit per key (tenant, API key, client IP) in bounded memory: at most
 * `maxKeys` buckets, least recently used evicted first. Every decision is O(1).
 *
 * @example
 * ```ts
 * const perTenant = new KeyedRateLimiter({ limit: 100, windowMs: 60_000, burst: 20 });
 * const decision = perTenant.consume(tenantId);
 * if (!decision.allowed) return tooManyRequests(decision.retryAfterMs);
 * ```
 */
export class KeyedRateLimiter implements RateLimiter, Policy, Disposable {
  static {
    declareJoinsScope(KeyedRateLimiter);
  }

  /** What the limiter enforces, as advertised in `RateLimit-Policy`. */
  readonly policy: RateLimitPolicy;
  readonly #config: RateConfig;
  readonly #algorithm: RateAlgorithm;
  readonly #maxKeys: number;
  readonly #buckets = new Map<string, TokenBucket | Gcra>();
  readonly #events = new Emitter<RateLimiterEvents>();
  #allowed = 0;
  #limited = 0;
  #evicted = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: KeyedRateLimiterOptions) {
    this.#config = rateConfig(options);
    this.#algorithm = oneOf('algorithm', options.algorithm ?? 'gcra', ['tokenBucket', 'gcra']);
    this.#maxKeys = integer('maxKeys', options.maxKeys ?? 10_000, { min: 1 });
    this.policy = { name: this.#config.name, limit: this.#config.limit, windowMs: this.#config.windowMs };
  }

  /** Keys currently tracked. */
  get size(): number {
    return this.#buckets.size;
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof RateLimiterEvents>(event: K, listener: Listener<RateLimiterEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /**
   * Spends `cost` of `key`'s quota if it has it.
   * @throws {InvalidOptionError} when `cost` is not a number from 0 to `burst`.
   */
  consume(key: string, cost = 1): RateLimitDecision {
    const decision = this.#bucket(key).consume(cost);
    this.#count(key, decision.allowed, decision.retryAfterMs);
    return decision;
  }

  /**
   * Runs `fn(context)` if `key` has `cost` of quota left (the {@link Policy} contract).
   * @throws {ShedError} `rateLimited` (rejection) with `retryAfterMs` when it has not.
   * @throws {InvalidOptionError} (rejection) when `cost` is not a number from 0 to `burst`.
   */
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: RateLimitExecuteOptions<T>): Promise<T> {
    return executeRateLimited(this, fn, options);
  }

  /** Like {@link consume} without the details; allocation-free for a known key. */
  tryTake(key: string, cost = 1): boolean {
    const allowed = this.#bucket(key).tryTake(cost);
    this.#count(key, allowed, 0);
    return allowed;
  }

  /** Forgets `key`. */
  delete(key: string): boolean {
    return this.#buckets.delete(key);
  }

  /** A snapshot: keys tracked, decisions and evictions since creation. */
  stats(): KeyedRateLimiterStats {
    return { name: this.#config.name, keys: this.#buckets.size, allowed: this.#allowed, limited: this.#limited, evicted: this.#evicted };
  }

  /** Forgets every key and listener. */
  close(): void {
    this.#buckets.clear();
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #bucket(key: string): TokenBucket | Gcra {
    const buckets = this.#buckets;
    let bucket = buckets.get(key);
    if (bucket !== undefined) {
      // Move to the end: Map iteration order is then least recently used first.
      buckets.delete(key);
      buckets.set(key, bucket);
      return bucket;
    }
    if (buckets.size >= this.#maxKeys) this.#evictOne();
    bucket = this.#algorithm === 'gcra' ? new Gcra(this.#config) : new TokenBucket(this.#config);
    buckets.set(key, bucket);
    return bucket;
  }

  #evictOne(): void {
    const oldest = this.#buckets.entries().next().value;
    if (oldest === undefined) return;
    const [key, bucket] = oldest;
    this.#buckets.delete(key);
    if (!bucket.idle()) {
      this.#evicted++;
      if (this.#events.has('evict')) this.#events.emit('evict', { name: this.#config.name, key });
    }
  }

  #count(key: string, allowed: boolean, retryAfterMs: number): void {
    if (allowed) this.#allowed++;
    else {
      this.#limited++;
      if (this.#events.has('shed')) this.#events.emit('shed', { name: this.#config.name, key, reason: 'rateLimited', retryAfterMs });
    }
  }
}
