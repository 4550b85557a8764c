import type { TimeoutError } from '@ballast/common';
import type { Context, MiddlewareHandler } from 'hono';
import { type BrokenCircuitError, isBrokenCircuitError, isTimeoutError } from './errors.ts';
import { type CircuitBreakerMiddlewareOptionsOf, circuitBreakerSettings, circuitRejection } from './http.ts';
import type { BreakerRegistry } from './registry.ts';

/**
 * Options of the {@link circuitBreaker} middleware: `key(c)` defaults to the route pattern
 * the middleware is mounted on (`c.req.routePath`), `isFailure(response, c)` judges the
 * `Response`, and `onRejected(c, error)` returns the answer.
 */
export type CircuitBreakerMiddlewareOptions = CircuitBreakerMiddlewareOptionsOf<
  Context,
  Response,
  (c: Context, error: BrokenCircuitError | TimeoutError) => Response | Promise<Response>
>;

/** The middleware, with the registry of its breakers (close it at shutdown). */
export type CircuitBreakerMiddleware = MiddlewareHandler & { readonly registry: BreakerRegistry };

const byRoute = (c: Context): string => c.req.routePath;
const serverError = (response: Response): boolean => response.status >= 500;

/**
 * The default rejection responses, in Ballast's error body `{ error: { code, message } }`:
 * 503 + `Retry-After` while open (`ERR_BALLAST_CIRCUIT_OPEN`), 504 on timeout (`ERR_BALLAST_TIMEOUT`).
 */
export function defaultOnRejected(c: Context, error: BrokenCircuitError | TimeoutError): Response {
  const answer = circuitRejection(error);
  return c.json(answer.body, answer.status as 503, answer.headers);
}

/**
 * Hono middleware protecting what runs after it (a route, or the upstream call a
 * handler makes) with a circuit breaker chosen by `key(c)`. While the circuit is open,
 * requests are answered at once with 503 and `Retry-After`. The request's own signal
 * (client gone) cancels the call without counting against the circuit.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const breakers = new BreakerRegistry({ breaker: { timeoutMs: 5_000 } });
 * app.use('/api/:tenant/*', circuitBreaker({ registry: breakers, key: (c) => c.req.param('tenant') ?? 'anonymous' }));
 * ```
 */
export const circuitBreaker = (options: CircuitBreakerMiddlewareOptions = {}): CircuitBreakerMiddleware => {
  const {
    registry,
    key,
    isFailure,
    onRejected = defaultOnRejected,
  } = circuitBreakerSettings(options, {
    key: byRoute,
    isFailure: serverError,
  });
  const middleware: MiddlewareHandler = async function circuitBreaker(c, next) {
    try {
      await registry.get(key(c)).execute(
        async () => {
          await next();
          return c.res;
        },
        { signal: c.req.raw.signal, isFailure: (response) => isFailure(response as Response, c) },
      );
    } catch (error) {
      if (isBrokenCircuitError(error) || isTimeoutError(error)) return onRejected(c, error);
      throw error;
    }
  };
  return Object.assign(middleware, { registry });
};
