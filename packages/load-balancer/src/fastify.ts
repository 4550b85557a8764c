/**
 * Fastify 5 reverse proxy over a balancer, built on `nodeProxy` (undici connection pools,
 * bodies streamed both ways, RFC 7239 forwarding headers, retries of requests that never
 * reached an upstream). Same balancing, options and error answers as
 * `@ballast/load-balancer/node` and `/hono`.
 */
import type { FastifyPluginCallback, FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { type BalancedProxyOptionsOf, frameworkProxy } from './framework-proxy.ts';
import { proxyRejection, UPSTREAM_FAILED } from './rejection.ts';

/**
 * Options of {@link balancedProxy}: those of `nodeProxy`, with `timeoutMs`, `key` and `path`
 * taking the Fastify request, and `onRejected(request, reply, error)` sending the answer.
 */
export type BalancedProxyOptions = BalancedProxyOptionsOf<
  FastifyRequest,
  (request: FastifyRequest, reply: FastifyReply, error: unknown) => void | Promise<void>
>;

/** The plugin; `close()` closes its upstream connection pools (also done when the Fastify instance closes). */
export type BalancedProxyPlugin = FastifyPluginCallback & AsyncDisposable & { close(): Promise<void> };

interface Context {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  /** The rejection being sent through the reply, when there is one. */
  answered?: Promise<unknown>;
}

/**
 * A Fastify plugin proxying every method and path under its prefix to the balancer's
 * endpoints (`nodeProxy` under the hood): register it with a prefix, e.g.
 * `app.register(balancedProxy({ balancer }), { prefix: '/api' })`. It forwards the method,
 * whole path (prefix included), query, headers and streaming body, and answers 503 when no
 * upstream is available, 502 when the upstream cannot be reached and 504 when it does not
 * answer within `timeoutMs`, with the JSON error body. The hooks of the enclosing contexts
 * run first (authentication, `admissionControl()`, `rateLimit()`), and headers they set on
 * the reply go out with the upstream's answer. Bodies are not parsed in the plugin's
 * context: they stream to the upstream as they arrive.
 *
 * @throws {InvalidOptionError} when `balancer` is missing or another option is invalid.
 * @example
 * ```ts
 * await app.register(balancedProxy({ balancer, timeoutMs: 5_000 }), { prefix: '/api' });
 * ```
 */
export const balancedProxy = (options: BalancedProxyOptions): BalancedProxyPlugin => {
  const proxy = frameworkProxy<FastifyRequest, Context, BalancedProxyOptions['onRejected']>(options, {
    path: (c) => c.request.raw.url ?? '/',
    reject: (c, error, onRejected) => {
      c.answered = (async () => {
        if (onRejected) return onRejected(c.request, c.reply, error);
        const answer = proxyRejection(error) ?? UPSTREAM_FAILED;
        await c.reply.code(answer.status).headers(answer.headers).send(answer.body);
      })();
    },
  });
  const handler: RouteHandlerMethod = async function balancedProxy(request, reply) {
    // Headers the hooks set on the reply (RateLimit, say) go out with the upstream's answer.
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) reply.raw.setHeader(name, value);
    const context: Context = { request, reply };
    await proxy.run(request.raw, reply.raw, context);
    await context.answered;
    return reply;
  };
  const plugin: FastifyPluginCallback = (instance, _options, done) => {
    // Bodies stay unread here: the proxy streams them to the upstream.
    instance.removeAllContentTypeParsers();
    instance.addContentTypeParser('*', (_request, _payload, parsed) => parsed(null));
    instance.all('/', handler);
    instance.all('/*', handler);
    instance.addHook('onClose', () => proxy.close());
    done();
  };
  Object.defineProperty(plugin, 'name', { value: 'balancedProxy' });
  return Object.assign(plugin, {
    close: proxy.close,
    [Symbol.asyncDispose]: proxy.close,
    [Symbol.for('fastify.display-name')]: '@ballast/load-balancer balancedProxy',
    [Symbol.for('plugin-meta')]: { fastify: '5.x', name: '@ballast/load-balancer balancedProxy' },
  });
};
