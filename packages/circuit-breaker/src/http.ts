/**
 * The framework-free half of the HTTP middleware (`./hono`, `./express`, `./fastify`):
 * validated settings and the answers to refused and timed-out requests. Each adapter only
 * maps its framework's request and response onto these.
 */
import { type ErrorAnswer, errorAnswer, func, retryAfterSeconds, type TimeoutError } from '@ballast/common';
import { type BrokenCircuitError, isBrokenCircuitError } from './errors.ts';
import { type BreakerRegistry, type BreakerRegistryOptions, toRegistry } from './registry.ts';

/**
 * Options of `circuitBreaker()`, the same in every adapter. `Req` is what the framework
 * hands its middleware (Hono's `Context`, the Express or Fastify request), `Res` what
 * `isFailure` judges (Hono's `Response`, the Express response, the Fastify reply),
 * `OnRejected` the framework's shape of the rejection hook.
 */
export interface CircuitBreakerMiddlewareOptionsOf<Req, Res, OnRejected> {
  /**
   * The registry holding one breaker per key, or options to create one.
   * @default a new registry with default options
   */
  registry?: BreakerRegistry | BreakerRegistryOptions;
  /**
   * The breaker key of a request: a route, an upstream, a tenant.
   * @default the route pattern (see each adapter)
   */
  key?: (request: Req) => string;
  /**
   * Responses that count as failures; they are still sent.
   * @default status >= 500 (an error thrown by the handler becomes a 500 and counts)
   */
  isFailure?: (response: Res, request: Req) => boolean;
  /**
   * The answer when the circuit refuses the request, or when it times out.
   * @default 503 with `Retry-After` (seconds, rounded up) while open; 504 on timeout; both with the body `{ error: { code, message } }`
   */
  onRejected?: OnRejected;
}

/** {@link CircuitBreakerMiddlewareOptionsOf}, validated, with its defaults. */
export interface CircuitBreakerSettings<Req, Res, OnRejected> {
  readonly registry: BreakerRegistry;
  readonly key: (request: Req) => string;
  readonly isFailure: (response: Res, request: Req) => boolean;
  readonly onRejected: OnRejected | undefined;
}

/**
 * Validates the options of `circuitBreaker()`, given the adapter's default key and
 * failure test.
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function circuitBreakerSettings<Req, Res, OnRejected>(
  options: CircuitBreakerMiddlewareOptionsOf<Req, Res, OnRejected> | undefined,
  defaults: { key: (request: Req) => string; isFailure: (response: Res, request: Req) => boolean },
): CircuitBreakerSettings<Req, Res, OnRejected> {
  const o = options ?? {};
  return {
    registry: toRegistry(o.registry),
    key: o.key === undefined ? defaults.key : func('key', o.key),
    isFailure: o.isFailure === undefined ? defaults.isFailure : func('isFailure', o.isFailure),
    onRejected: o.onRejected === undefined ? undefined : (func('onRejected', o.onRejected) as OnRejected),
  };
}

/**
 * The default answer to a request the breaker refused or timed out, in Ballast's error
 * body `{ error: { code, message } }`: 503 + `Retry-After` while open
 * (`ERR_BALLAST_CIRCUIT_OPEN`), 504 on timeout (`ERR_BALLAST_TIMEOUT`).
 */
export function circuitRejection(error: BrokenCircuitError | TimeoutError): ErrorAnswer {
  if (isBrokenCircuitError(error)) {
    return errorAnswer(503, error.code, error.message, { 'Retry-After': String(retryAfterSeconds(error.retryAfterMs)) });
  }
  return errorAnswer(504, error.code, error.message);
}
