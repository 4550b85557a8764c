/**
 * Hono middleware: admission control (concurrency limit, 503) and rate limiting (429),
 * answering at once with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit`
 * headers (draft-ietf-httpapi-ratelimit-headers).
 */
import { errorBody, retryAfterSeconds } from '@ballast/common';
import type { Context, MiddlewareHandler } from 'hono';
import { isShedError, type ShedError } from './errors.ts';
import type { ConcurrencyLimiter, Permit } from './limiter.ts';
import type { RateLimitDecision, RateLimiter, RateLimitPolicy } from './rate-limit.ts';
import type { Priority } from './wait-queue.ts';

/** Options of {@link admissionControl}. */
export interface AdmissionControlOptions {
  /** The limiter, or a function choosing one per request (per route, per tenant). Share it across requests. */
  limiter: ConcurrencyLimiter | ((c: Context) => ConcurrencyLimiter);
  /** The priority of a request. @default () => 'normal' */
  priority?: (c: Context) => Priority;
  /** Which answers signal overload to the adaptive limit. @default status 503 or 504 */
  isDropped?: (status: number) => boolean;
  /** Answers a shed request. @default 503 with `Retry-After` and the JSON body `{ error: { code, message, reason } }` */
  onRejected?: (c: Context, error: ShedError) => Response | Promise<Response>;
}

/** Options of {@link rateLimit}. */
export interface RateLimitMiddlewareOptions {
  /** A {@link KeyedRateLimiter}, {@link RedisRateLimiter} or your own {@link RateLimiter}. */
  limiter: RateLimiter;
  /** The key to limit by: tenant, API key, client IP. @default () => 'global' (one shared limit) */
  key?: (c: Context) => string | Promise<string>;
  /** Units of quota the request costs. @default () => 1 */
  cost?: (c: Context) => number;
  /** Add `RateLimit-Policy` and `RateLimit` headers to every answer, not only to 429s. @default true */
  headers?: boolean;
  /** Answers a limited request. @default 429 with `Retry-After`, the RateLimit headers and the JSON body `{ error: { code, message, reason } }` */
  onRejected?: (c: Context, decision: RateLimitDecision) => Response | Promise<Response>;
}

function quote(name: string): string {
  return `"${name.replace(/["\\]/g, '\\$&')}"`;
}

/** The IETF `RateLimit-Policy` header value, e.g. `"default";q=100;w=60`. */
export function rateLimitPolicyHeader(policy: RateLimitPolicy): string {
  return `${quote(policy.name)};q=${Math.floor(policy.limit)};w=${Math.max(1, Math.ceil(policy.windowMs / 1000))}`;
}

/** The IETF `RateLimit` header value, e.g. `"default";r=42;t=12`. */
export function rateLimitHeader(policy: RateLimitPolicy, decision: RateLimitDecision): string {
  return `${quote(policy.name)};r=${Math.max(0, Math.floor(decision.remaining))};t=${Math.max(0, Math.ceil(decision.resetMs / 1000))}`;
}

const APPEND = { append: true } as const;

const defaultIsDropped = (status: number): boolean => status === 503 || status === 504;

/**
 * Admission control by concurrency: requests beyond the limiter's limit (and queue) are
 * answered 503 with `Retry-After` at once; a queued request whose client disconnects is
 * removed from the queue and never runs (answered with a bodiless 499 nobody reads). The
 * request's signal is read only when the request has to wait. Each admitted request's latency
 * and status feed the limiter's (adaptive) limit. The slot is held until the handler returns.
 *
 * @example
 * ```ts
 * const limiter = new ConcurrencyLimiter({ limit: new VegasLimit(), maxQueue: 100, discipline: 'adaptiveLifo' });
 * app.use('/v1/*', admissionControl({ limiter, priority: (c) => (c.req.header('x-priority') === 'critical' ? 'critical' : 'normal') }));
 * ```
 */
export const admissionControl = (options: AdmissionControlOptions): MiddlewareHandler => {
  const { limiter, priority, onRejected } = options;
  const isDropped = options.isDropped ?? defaultIsDropped;
  return async function admissionControl(c, next) {
    const chosen = typeof limiter === 'function' ? limiter(c) : limiter;
    // Read only if the request has to wait: @hono/node-server builds a whole Request to
    // provide it, work that admitting or shedding at once does not need.
    let signal: AbortSignal | undefined;
    const requestSignal = (): AbortSignal => (signal = c.req.raw.signal);
    let permit: Permit;
    try {
      permit = await chosen.acquire({ signal: requestSignal, priority: priority?.(c) ?? 'normal' });
    } catch (error) {
      if (isShedError(error)) {
        if (onRejected) return onRejected(c, error);
        c.header('Retry-After', String(retryAfterSeconds(error.retryAfterMs)));
        return c.json(errorBody(error.code, error.message, { reason: error.reason }), 503);
      }
      // The client went away while queued: nobody reads this answer.
      if (signal?.aborted) return c.body(null, 499 as 500);
      throw error;
    }
    if (signal?.aborted) {
      // Went away between getting the slot and running: the handler never starts.
      permit.release({ ignore: true });
      return c.body(null, 499 as 500);
    }
    let ok = false;
    try {
      await next();
      ok = c.error === undefined && !isDropped(c.res.status);
    } finally {
      permit.release({ ok });
    }
  };
};

/**
 * Rate limiting per key: a request over its key's rate is answered 429 with
 * `Retry-After` at once. Answers carry the IETF `RateLimit-Policy` and `RateLimit` headers.
 *
 * @example
 * ```ts
 * const perKey = new KeyedRateLimiter({ name: 'per-key', limit: 100, windowMs: 60_000, burst: 20 });
 * app.use('/v1/*', rateLimit({ limiter: perKey, key: (c) => c.req.header('x-api-key') ?? 'anonymous' }));
 * ```
 */
export const rateLimit = (options: RateLimitMiddlewareOptions): MiddlewareHandler => {
  const { limiter, onRejected } = options;
  const key = options.key ?? (() => 'global');
  const cost = options.cost ?? (() => 1);
  const headers = options.headers ?? true;
  const policyHeader = rateLimitPolicyHeader(limiter.policy);
  return async function rateLimit(c, next) {
    const decision = await limiter.consume(await key(c), cost(c));
    if (!decision.allowed) {
      if (onRejected) return onRejected(c, decision);
      c.header('RateLimit-Policy', policyHeader, APPEND);
      c.header('RateLimit', rateLimitHeader(limiter.policy, decision), APPEND);
      c.header('Retry-After', String(retryAfterSeconds(decision.retryAfterMs)));
      return c.json(errorBody('ERR_BALLAST_SHED', 'request shed: rateLimited', { reason: 'rateLimited' }), 429);
    }
    await next();
    if (headers) {
      // Set after the handler: c.header() then also reaches a Response the handler built itself.
      // Appended: with several rateLimit() layers every policy is listed (the fields are lists).
      c.header('RateLimit-Policy', policyHeader, APPEND);
      c.header('RateLimit', rateLimitHeader(limiter.policy, decision), APPEND);
    }
  };
};
