import { type Clock, durationMs, finiteNumber, integer, RollingWindow, ratio, systemClock } from '@ballast/common';

/** A snapshot of a budget, for dashboards and tests. */
export interface RetryBudgetStats {
  /** `'tokenBucket'` or `'ratio'` for the built-in budgets. */
  kind: string;
  /** Retries and hedges the budget allowed since it was created. */
  allowed: number;
  /** Retries and hedges it refused. */
  suppressed: number;
  /** Token bucket: tokens now. */
  tokens?: number;
  /** Ratio budget: first attempts in the window. */
  requests?: number;
  /** Ratio budget: retries in the window. */
  retries?: number;
  /** Retries that would be allowed now, counting those already made (ratio budget: in the window). */
  limit?: number;
}

/**
 * Caps retries across many calls to one upstream, so that a failing upstream sees a
 * bounded amount of extra load instead of `maxAttempts` times its normal load. Share
 * one budget per upstream (per host, per cluster) between every call and every policy
 * that targets it: a budget made per call never refuses anything.
 *
 * The retry loop reports each call's first attempt (`onRequest`), each attempt's
 * outcome (`onSuccess`, `onFailure` for retryable failures) and asks `tryAcquire()`
 * before every retry and every hedge. Implement it to plug in your own policy.
 */
export interface RetryBudget extends Disposable {
  /** A call is sending its first attempt. */
  onRequest(): void;
  /** An attempt succeeded. */
  onSuccess(): void;
  /** An attempt failed in a way that would be retried. */
  onFailure(): void;
  /** Asks for one retry or hedge; `true` allows it and counts it against the budget. */
  tryAcquire(): boolean;
  /** A snapshot of the budget's state. */
  stats(): RetryBudgetStats;
  /** Releases the budget; a closed budget allows nothing. Idempotent. */
  close(): void;
}

/** Options of {@link TokenBucketBudget}. */
export interface TokenBucketBudgetOptions {
  /** Capacity of the bucket, and the tokens it starts with (gRPC's `maxTokens`, 1..1000). @default 10 */
  maxTokens?: number;
  /** Tokens earned per successful attempt (gRPC's `tokenRatio`, > 0). @default 0.1 */
  tokenRatio?: number;
}

/**
 * gRPC's retry throttling (gRFC A6): every retryable failure spends one token,
 * every success earns `tokenRatio`, and retries (and hedges) are allowed only while
 * more than half the bucket is left. A failing upstream drains it in
 * `maxTokens / 2` failures and then sees no retries at all until successes refill it.
 */
export class TokenBucketBudget implements RetryBudget {
  /** Capacity of the bucket. */
  readonly maxTokens: number;
  /** Tokens earned per success. */
  readonly tokenRatio: number;
  #tokens: number;
  #allowed = 0;
  #suppressed = 0;
  #closed = false;

  /** @throws InvalidOptionError when an option is out of range. */
  constructor(options: TokenBucketBudgetOptions = {}) {
    this.maxTokens = finiteNumber('maxTokens', options.maxTokens ?? 10, { min: 1, max: 1000 });
    this.tokenRatio = finiteNumber('tokenRatio', options.tokenRatio ?? 0.1, { min: Number.MIN_VALUE, max: this.maxTokens });
    this.#tokens = this.maxTokens;
  }

  /** Tokens in the bucket now. */
  get tokens(): number {
    return this.#tokens;
  }

  /** Nothing to count: the bucket moves on outcomes only. */
  onRequest(): void {}

  /** Earns `tokenRatio` tokens, up to `maxTokens`. */
  onSuccess(): void {
    this.#tokens = Math.min(this.maxTokens, this.#tokens + this.tokenRatio);
  }

  /** Spends one token, down to 0. */
  onFailure(): void {
    this.#tokens = Math.max(0, this.#tokens - 1);
  }

  /** Allows a retry while more than half the bucket is left (the retry itself spends nothing). */
  tryAcquire(): boolean {
    if (!this.#closed && this.#tokens > this.maxTokens / 2) {
      this.#allowed++;
      return true;
    }
    this.#suppressed++;
    return false;
  }

  /** Counters and the tokens now. */
  stats(): RetryBudgetStats {
    return { kind: 'tokenBucket', allowed: this.#allowed, suppressed: this.#suppressed, tokens: this.#tokens };
  }

  /** Refuses every later retry. Idempotent. */
  close(): void {
    this.#closed = true;
  }

  /** Same as `close()`, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Options of {@link RatioBudget}. */
export interface RatioBudgetOptions {
  /** Retries allowed as a share of first attempts in the window (Envoy's `budget_percent` / 100, Finagle's `percentCanRetry`). @default 0.2 */
  ratio?: number;
  /** Retries per second always allowed, however few requests there are (Finagle's `minRetriesPerSec`). @default 10 */
  minRetriesPerSec?: number;
  /** Length of the sliding window, ms (Finagle's `ttl`). @default 10_000 */
  windowMs?: number;
  /** Slots of the sliding window; it slides in steps of `windowMs / buckets`. @default 10 */
  buckets?: number;
  /** Time source. @default systemClock */
  clock?: Clock;
}

const REQUESTS = 0;
const RETRIES = 1;

/**
 * Envoy's and Finagle's retry budget: retries (and hedges) within the sliding window
 * may not exceed `ratio` of the calls started in it, or `minRetriesPerSec` per second,
 * whichever is larger (Envoy takes the larger of the share and `min_retry_concurrency`).
 * Under a total outage the extra load on the upstream is therefore `ratio` of the
 * normal load once the normal load exceeds `minRetriesPerSec / ratio` per second.
 * Counting is O(1) and needs no timer.
 */
export class RatioBudget implements RetryBudget {
  /** Share of first attempts that may be retried. */
  readonly ratio: number;
  /** Retries per second always allowed. */
  readonly minRetriesPerSec: number;
  /** Window length, ms. */
  readonly windowMs: number;
  readonly #clock: Clock;
  readonly #window: RollingWindow;
  readonly #reserve: number;
  #allowed = 0;
  #suppressed = 0;
  #closed = false;

  /** @throws InvalidOptionError when an option is out of range. */
  constructor(options: RatioBudgetOptions = {}) {
    this.ratio = ratio('ratio', options.ratio ?? 0.2, { max: 100 });
    this.minRetriesPerSec = finiteNumber('minRetriesPerSec', options.minRetriesPerSec ?? 10, { min: 0 });
    this.windowMs = durationMs('windowMs', options.windowMs ?? 10_000, { min: 1 });
    const buckets = integer('buckets', options.buckets ?? 10, { min: 1, max: 1000 });
    this.#clock = options.clock ?? systemClock;
    this.#window = new RollingWindow(this.windowMs, buckets, 2);
    this.#reserve = (this.minRetriesPerSec * this.windowMs) / 1000;
  }

  /** Counts a call in the window. */
  onRequest(): void {
    this.#window.add(REQUESTS, this.#clock.now());
  }

  /** Nothing to count: the ratio moves on calls and retries only. */
  onSuccess(): void {}

  /** Nothing to count: the ratio moves on calls and retries only. */
  onFailure(): void {}

  /** Allows a retry while the window's retries stay within the limit, and counts it. */
  tryAcquire(): boolean {
    const now = this.#clock.now();
    if (!this.#closed && this.#window.total(RETRIES, now) + 1 <= this.#limit(now)) {
      this.#window.add(RETRIES, now);
      this.#allowed++;
      return true;
    }
    this.#suppressed++;
    return false;
  }

  /** Counters, and the window's calls, retries and limit now. */
  stats(): RetryBudgetStats {
    const now = this.#clock.now();
    const [requests = 0, retries = 0] = this.#window.totals(now);
    return { kind: 'ratio', allowed: this.#allowed, suppressed: this.#suppressed, requests, retries, limit: this.#limit(now) };
  }

  /** Refuses every later retry and empties the window. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#window.reset();
  }

  /** Same as `close()`, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close();
  }

  #limit(now: number): number {
    return Math.max(this.#reserve, this.ratio * this.#window.total(REQUESTS, now));
  }
}

/** A gRPC-style token bucket budget; see {@link TokenBucketBudget}. */
export function tokenBucketBudget(options?: TokenBucketBudgetOptions): TokenBucketBudget {
  return new TokenBucketBudget(options);
}

/** An Envoy/Finagle-style ratio budget; see {@link RatioBudget}. */
export function ratioBudget(options?: RatioBudgetOptions): RatioBudget {
  return new RatioBudget(options);
}
