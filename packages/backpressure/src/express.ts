/**
 * Express 5 middleware: admission control (concurrency limit, 503) and rate limiting
 * (429), answering at once with `Retry-After` and the IETF `RateLimit-Policy` /
 * `RateLimit` headers. Same options, answers and error body as `@ballast/backpressure/hono`.
 */
import { sendErrorAnswer } from '@ballast/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { NodeAdmissionControlOptions, NodeRateLimitOptions, NodeStepOutcome } from './node-middleware.ts';
import { nodeAdmissionStep, nodeRateLimitStep } from './node-middleware.ts';

/** Options of {@link admissionControl}: `onRejected(req, res, error)` sends the answer. */
export type AdmissionControlOptions = NodeAdmissionControlOptions<Request, Response>;

/** Options of {@link rateLimit}: `onRejected(req, res, decision)` sends the answer. */
export type RateLimitMiddlewareOptions = NodeRateLimitOptions<Request, Response>;

const responseHeader = {
  get: (res: Response, name: string) => res.getHeader(name),
  set: (res: Response, name: string, value: string): void => void res.setHeader(name, value),
};

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
  const admit = nodeAdmissionStep(options, (res: Response) => res);
  return function admissionControl(req: Request, res: Response, next: NextFunction): void {
    admit(req, res)
      .then((outcome) => send(outcome, res, next))
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
  const limit = nodeRateLimitStep(options, responseHeader);
  return function rateLimit(req: Request, res: Response, next: NextFunction): void {
    limit(req, res)
      .then((outcome) => send(outcome, res, next))
      .catch(next);
  };
};

/** Goes on, or sends the answer (a client that went away, or one `onRejected` answered, is sent nothing more). */
function send(outcome: NodeStepOutcome, res: Response, next: NextFunction): void {
  if (outcome === 'next') next();
  else if (typeof outcome === 'object') sendErrorAnswer(res, outcome);
}
