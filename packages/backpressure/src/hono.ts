/**
 * Hono middleware: admission control (concurrency limit, 503) and rate limiting (429),
 * answering at once with `Retry-After` and the IETF `RateLimit-Policy` / `RateLimit`
 * headers (draft-ietf-httpapi-ratelimit-headers).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { isShedError, type ShedError } from './errors.ts';
import {
  type AdmissionControlOptionsOf,
  admissionSettings,
  type RateLimitMiddlewareOptionsOf,
  rateLimitedAnswer,
  rateLimitHeader,
  rateLimitSettings,
  shedAnswer,
} from './http.ts';
import type { Permit } from './limiter.ts';
import type { RateLimitDecision } from './rate-limit.ts';

export { rateLimitHeader, rateLimitPolicyHeader } from './http.ts';

/** Options of {@link admissionControl}: `onRejected(c, error)` returns the answer. */
export type AdmissionControlOptions = AdmissionControlOptionsOf<Context, (c: Context, error: ShedError) => Response | Promise<Response>>;

/** Options of {@link rateLimit}: `onRejected(c, decision)` returns the answer. */
export type RateLimitMiddlewareOptions = RateLimitMiddlewareOptionsOf<
  Context,
  (c: Context, decision: RateLimitDecision) => Response | Promise<Response>
>;

const APPEND = { append: true } as const;

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
  const { limiterOf, priority, isDropped, onRejected } = admissionSettings(options);
  return async function admissionControl(c, next) {
    const chosen = limiterOf(c);
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
        const answer = shedAnswer(error);
        return c.json(answer.body, 503, answer.headers);
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
  const { limiter, key, cost, headers, policyHeader, onRejected } = rateLimitSettings(options);
  return async function rateLimit(c, next) {
    const decision = await limiter.consume(await key(c), cost(c));
    if (!decision.allowed) {
      if (onRejected) return onRejected(c, decision);
      c.header('RateLimit-Policy', policyHeader, APPEND);
      c.header('RateLimit', rateLimitHeader(limiter.policy, decision), APPEND);
      const answer = rateLimitedAnswer(decision);
      return c.json(answer.body, 429, answer.headers);
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

export { type BrownoutDimmer, type BrownoutMiddlewareOptions, brownout } from './hono-brownout.ts';
