import { errorBody, retryAfterSeconds, type TimeoutError } from '@ballast/common';
import type { Context, MiddlewareHandler } from 'hono';
import { type BrokenCircuitError, isBrokenCircuitError, isTimeoutError } from './errors.ts';
import { type BreakerRegistry, type BreakerRegistryOptions, toRegistry } from './registry.ts';

/** Options of the {@link circuitBreaker} middleware. */
export interface CircuitBreakerMiddlewareOptions {
  /**
   * The registry holding one breaker per key, or options to create one.
   * @default a new registry with default options
   */
  registry?: BreakerRegistry | BreakerRegistryOptions;
  /**
   * The breaker key of a request: a route, an upstream, a tenant.
   * @default the route pattern the middleware is mounted on (`c.req.routePath`)
   */
  key?: (c: Context) => string;
  /**
   * Responses that count as failures; they are still sent.
   * @default status >= 500 (an error thrown by the handler becomes a 500 and counts)
   */
  isFailure?: (response: Response, c: Context) => boolean;
  /**
   * The response when the circuit refuses the request, or when it times out.
   * @default 503 with `Retry-After` (seconds, rounded up) while open; 504 on timeout; both with the body `{ error: { code, message } }`
   */
  onRejected?: (c: Context, error: BrokenCircuitError | TimeoutError) => Response | Promise<Response>;
}

/** The middleware, with the registry of its breakers (close it at shutdown). */
export type CircuitBreakerMiddleware = MiddlewareHandler & { readonly registry: BreakerRegistry };

const byRoute = (c: Context): string => c.req.routePath;
const serverError = (response: Response): boolean => response.status >= 500;

/**
 * The default rejection responses, in Ballast's error body `{ error: { code, message } }`:
 * 503 + `Retry-After` while open (`ERR_BALLAST_CIRCUIT_OPEN`), 504 on timeout (`ERR_BALLAST_TIMEOUT`).
 */
export function defaultOnRejected(c: Context, error: BrokenCircuitError | TimeoutError): Response {
  if (isBrokenCircuitError(error)) {
    return c.json(errorBody(error.code, error.message), 503, { 'Retry-After': String(retryAfterSeconds(error.retryAfterMs)) });
  }
  return c.json(errorBody(error.code, error.message), 504);
}

/**
 * Hono middleware protecting what runs after it (a route, or the upstream call a
 * handler makes) with a circuit breaker chosen by `key(c)`. While the circuit is open,
 * requests are answered at once with 503 and `Retry-After`. The request's own signal
 * (client gone) cancels the call without counting against the circuit.
 *
 * @example
 * ```ts
 * const breakers = new BreakerRegistry({ breaker: { timeoutMs: 5_000 } });
 * app.use('/api/:tenant/*', circuitBreaker({ registry: breakers, key: (c) => c.req.param('tenant') ?? 'anonymous' }));
 * ```
 */
export const circuitBreaker = (options: CircuitBreakerMiddlewareOptions = {}): CircuitBreakerMiddleware => {
  const registry = toRegistry(options.registry);
  const key = options.key ?? byRoute;
  const isFailure = options.isFailure ?? serverError;
  const onRejected = options.onRejected ?? defaultOnRejected;
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
