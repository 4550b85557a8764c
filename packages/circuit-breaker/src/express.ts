/**
 * Express 5 middleware: a circuit breaker per route, upstream or tenant. Same options,
 * answers and error body as `@ballast/circuit-breaker/hono`.
 */
import { sendErrorAnswer, type TimeoutError } from '@ballast/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { BrokenCircuitError } from './errors.ts';
import { type CircuitBreakerMiddlewareOptionsOf, circuitBreakerSettings, circuitRejection } from './http.ts';
import { enterCircuit } from './node-call.ts';
import type { BreakerRegistry } from './registry.ts';

/**
 * Options of the {@link circuitBreaker} middleware: `key(req)` defaults to the route's path
 * pattern (`req.route.path`, e.g. `/users/:id`) when the middleware is given to a route, and
 * to `'*'` (one breaker) when it is mounted with `app.use()`; `isFailure(res, req)` judges
 * the response by its `statusCode`; `onRejected(req, res, error)` sends the answer.
 */
export type CircuitBreakerMiddlewareOptions = CircuitBreakerMiddlewareOptionsOf<
  Request,
  Response,
  (req: Request, res: Response, error: BrokenCircuitError | TimeoutError) => void | Promise<void>
>;

/** The middleware, with the registry of its breakers (close it at shutdown). */
export type CircuitBreakerMiddleware = RequestHandler & { readonly registry: BreakerRegistry };

const byRoute = (req: Request): string => (req.route ? String((req.route as { path: unknown }).path) : '*');
const serverError = (res: Response): boolean => res.statusCode >= 500;

/**
 * Express middleware protecting what runs after it (a route, or the upstream call a
 * handler makes) with a circuit breaker chosen by `key(req)`. The call lasts until the
 * response is sent; `isFailure` judges it then. While the circuit is open, requests are
 * answered at once with 503 and `Retry-After`. A client that goes away cancels the call
 * without counting against the circuit. When the call times out (the breaker's
 * `timeoutMs`) before the response starts, the middleware answers 504 at once; the
 * handler, which cannot be stopped, finishes in the background and whatever it sends
 * then fails with Express's `ERR_HTTP_HEADERS_SENT`.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const breakers = new BreakerRegistry({ breaker: { timeoutMs: 5_000 } });
 * app.get('/api/:tenant/orders', circuitBreaker({ registry: breakers, key: (req) => req.params.tenant ?? 'anonymous' }), orders);
 * ```
 */
export const circuitBreaker = (options: CircuitBreakerMiddlewareOptions = {}): CircuitBreakerMiddleware => {
  const { registry, key, isFailure, onRejected } = circuitBreakerSettings(options, { key: byRoute, isFailure: serverError });
  const reject = async (req: Request, res: Response, error: BrokenCircuitError | TimeoutError): Promise<void> => {
    if (onRejected) await onRejected(req, res, error);
    else sendErrorAnswer(res, circuitRejection(error));
  };
  const middleware = function circuitBreaker(req: Request, res: Response, next: NextFunction): void {
    const late = (error: TimeoutError): void => {
      if (!res.headersSent) reject(req, res, error).catch((cause: unknown) => res.destroy(cause as Error));
    };
    enterCircuit(registry.get(key(req)), res, () => isFailure(res, req), late)
      .then(async (entry) => {
        if (entry === 'admitted') return next();
        if (entry !== 'gone') await reject(req, res, entry);
      })
      .catch(next);
  };
  return Object.assign(middleware, { registry });
};
