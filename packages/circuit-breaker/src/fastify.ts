/**
 * Fastify 5 plugin: a circuit breaker per route, upstream or tenant. Same options,
 * answers and error body as `@ballast/circuit-breaker/hono`.
 *
 * `circuitBreaker()` returns a plugin that adds an `onRequest` hook to the context
 * registering it (and the contexts it encapsulates: not its siblings nor its parent), and
 * carries the hook as `.onRequest` for one route (`{ onRequest: breaker.onRequest }`).
 */
import { hookPlugin, type TimeoutError } from '@ballast/common';
import type { FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { BrokenCircuitError } from './errors.ts';
import { type CircuitBreakerMiddlewareOptionsOf, circuitBreakerSettings, circuitRejection } from './http.ts';
import { enterCircuit } from './node-call.ts';
import type { BreakerRegistry } from './registry.ts';

/**
 * Options of the {@link circuitBreaker} plugin: `key(request)` defaults to the route's URL
 * pattern (`request.routeOptions.url`, e.g. `/users/:id`; `'*'` for requests no route
 * matched); `isFailure(reply, request)` judges the reply by its `statusCode`;
 * `onRejected(request, reply, error)` sends the answer.
 */
export type CircuitBreakerMiddlewareOptions = CircuitBreakerMiddlewareOptionsOf<
  FastifyRequest,
  FastifyReply,
  (request: FastifyRequest, reply: FastifyReply, error: BrokenCircuitError | TimeoutError) => void | Promise<void>
>;

/** The breaker's `onRequest` hook. */
export type CircuitBreakerHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** The plugin, with its hook (`.onRequest`) and the registry of its breakers (close it at shutdown). */
export type CircuitBreakerPlugin = FastifyPluginCallback & { readonly onRequest: CircuitBreakerHook; readonly registry: BreakerRegistry };

const byRoute = (request: FastifyRequest): string => request.routeOptions.url ?? '*';
const serverError = (reply: FastifyReply): boolean => reply.statusCode >= 500;

/**
 * A Fastify plugin protecting the routes of its context with a circuit breaker chosen by
 * `key(request)`. The call lasts until the response is sent; `isFailure` judges it then.
 * While the circuit is open, requests are answered at once with 503 and `Retry-After`. A
 * client that goes away cancels the call without counting against the circuit. When the
 * call times out (the breaker's `timeoutMs`) before the response starts, the plugin
 * answers 504 at once; the handler, which cannot be stopped, finishes in the background
 * and Fastify drops (and logs) whatever it sends then.
 *
 * @throws {InvalidOptionError} naming the first invalid option.
 * @example
 * ```ts
 * const breakers = new BreakerRegistry({ breaker: { timeoutMs: 5_000 } });
 * await app.register(circuitBreaker({ registry: breakers }));
 * ```
 */
export const circuitBreaker = (options: CircuitBreakerMiddlewareOptions = {}): CircuitBreakerPlugin => {
  const { registry, key, isFailure, onRejected } = circuitBreakerSettings(options, { key: byRoute, isFailure: serverError });
  const reject = async (request: FastifyRequest, reply: FastifyReply, error: BrokenCircuitError | TimeoutError): Promise<void> => {
    if (onRejected) {
      await onRejected(request, reply, error);
      return;
    }
    const answer = circuitRejection(error);
    await reply.code(answer.status).headers(answer.headers).send(answer.body);
  };
  const hook: CircuitBreakerHook = async function circuitBreaker(request, reply) {
    const late = (error: TimeoutError): void => {
      if (!reply.sent && !reply.raw.headersSent) reject(request, reply, error).catch((cause: unknown) => reply.raw.destroy(cause as Error));
    };
    const entry = await enterCircuit(registry.get(key(request)), reply.raw, () => isFailure(reply, request), late);
    if (entry === 'admitted') return;
    if (entry === 'gone') {
      // Nobody to answer: stop here without writing to the closed connection.
      reply.hijack();
      return reply;
    }
    await reject(request, reply, entry);
    return reply;
  };
  return Object.assign(
    hookPlugin('@ballast/circuit-breaker', hook) as unknown as FastifyPluginCallback & { onRequest: CircuitBreakerHook },
    {
      registry,
    },
  );
};
