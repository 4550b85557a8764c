/**
 * Express 5 middleware: admission control (concurrency limit, 503) and rate limiting
 * (429), answering at once with `Retry-After` and the IETF `RateLimit-Policy` /
 * `RateLimit` headers. Same options, answers and error body as `@ballast/backpressure/hono`.
 */
import { sendErrorAnswer } from '@ballast/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { ShedError } from './errors.ts';
import {
  type AdmissionControlOptionsOf,
  admissionSettings,
  appendToList,
  type RateLimitMiddlewareOptionsOf,
  rateLimitedAnswer,
  rateLimitHeader,
  rateLimitSettings,
  shedAnswer,
} from './http.ts';
import { admitNodeRequest } from './node-admission.ts';
import type { RateLimitDecision } from './rate-limit.ts';

/** Options of {@link admissionControl}: `onRejected(req, res, error)` sends the answer. */
export type AdmissionControlOptions = AdmissionControlOptionsOf<
  Request,
  (req: Request, res: Response, error: ShedError) => void | Promise<void>
>;

/** Options of {@link rateLimit}: `onRejected(req, res, decision)` sends the answer. */
export type RateLimitMiddlewareOptions = RateLimitMiddlewareOptionsOf<
  Request,
  (req: Request, res: Response, decision: RateLimitDecision) => void | Promise<void>
>;

/**
 * Admission control by concurrency: requests beyond the limiter's limit (and queue) are
 * answered 503 with `Retry-After` at once. The slot is held until the response is over:
 * sent whole (its status, judged by `isDropped`, feeds the adaptive limit), or closed
 * first by a client that went away (the slot is freed and the limit learns nothing). A
 * queued request whose client disconnects leaves the queue at once and never runs.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const limiter = new ConcurrencyLimiter({ limit: new VegasLimit(), maxQueue: 100, discipline: 'adaptiveLifo' });
 * app.use('/v1', admissionControl({ limiter, priority: (req) => (req.get('x-priority') === 'critical' ? 'critical' : 'normal') }));
 * ```
 */
export const admissionControl = (options: AdmissionControlOptions): RequestHandler => {
  const { limiterOf, priority, isDropped, onRejected } = admissionSettings(options);
  return function admissionControl(req: Request, res: Response, next: NextFunction): void {
    admitNodeRequest(limiterOf(req), priority?.(req) ?? 'normal', res, isDropped)
      .then(async (admission) => {
        if (admission === 'admitted') return next();
        // A client that went away is sent nothing.
        if (admission === 'gone') return;
        if (onRejected) return onRejected(req, res, admission);
        sendErrorAnswer(res, shedAnswer(admission));
      })
      .catch(next);
  };
};

/**
 * Rate limiting per key: a request over its key's rate is answered 429 with
 * `Retry-After` at once. Answers carry the IETF `RateLimit-Policy` and `RateLimit`
 * headers (set before the handler runs, so they reach whatever it sends, error answers
 * included); several `rateLimit()` layers each append their policy.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const perKey = new KeyedRateLimiter({ name: 'per-key', limit: 100, windowMs: 60_000, burst: 20 });
 * app.use('/v1', rateLimit({ limiter: perKey, key: (req) => req.get('x-api-key') ?? 'anonymous' }));
 * ```
 */
export const rateLimit = (options: RateLimitMiddlewareOptions): RequestHandler => {
  const { limiter, key, cost, headers, policyHeader, onRejected } = rateLimitSettings(options);
  const append = (res: Response, decision: RateLimitDecision): void => {
    res.setHeader('RateLimit-Policy', appendToList(res.getHeader('RateLimit-Policy'), policyHeader));
    res.setHeader('RateLimit', appendToList(res.getHeader('RateLimit'), rateLimitHeader(limiter.policy, decision)));
  };
  return function rateLimit(req: Request, res: Response, next: NextFunction): void {
    (async () => {
      const decision = await limiter.consume(await key(req), cost(req));
      if (decision.allowed) {
        if (headers) append(res, decision);
        return next();
      }
      if (onRejected) return onRejected(req, res, decision);
      append(res, decision);
      sendErrorAnswer(res, rateLimitedAnswer(decision));
    })().catch(next);
  };
};
