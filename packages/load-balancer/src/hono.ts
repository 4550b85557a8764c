import { errorBody, func, InvalidOptionError } from '@ballast/common';
import type { Context, MiddlewareHandler } from 'hono';
import type { LoadBalancer } from './balancer.ts';
import { type ForwardOptions, forward, resolveForwardOptions } from './forward.ts';
import { createForwarding, type ForwardingOptions, stripHopByHop } from './forwarding.ts';
import { proxyRejection } from './rejection.ts';
import { foreignHost, foreignHostMessage } from './request-target.ts';

/** Options of {@link balancedProxy}. */
export interface BalancedProxyOptions extends ForwardOptions, ForwardingOptions {
  /** The balancer whose endpoint addresses are the upstream base URLs (`http://10.0.0.5:8080`). */
  balancer: LoadBalancer;
  /** Affinity key for `hashAffinity()`, e.g. the client IP or a session cookie. @default none */
  key?: (c: Context) => string | undefined;
  /** Path and query sent upstream. @default the request's own path and query */
  path?: (c: Context) => string;
  /**
   * The peer's address (the connection's remote address): checked against
   * `trustedProxies` and written into `Forwarded: for=` and `X-Forwarded-For`.
   * @default the socket's remote address under `@hono/node-server`, otherwise none (`for=unknown`)
   */
  clientIp?: (c: Context) => string | undefined;
  /**
   * Turns a failure into a response. `error` is a `NoEndpointAvailableError` (default 503),
   * an `UpstreamError` (default 504 on timeout, 502 otherwise) or the client's abort reason
   * (default 499, which nobody reads).
   */
  onRejected?: (c: Context, error: unknown) => Response | Promise<Response>;
}

const BODYLESS = new Set(['GET', 'HEAD']);

function optionalFunc<T extends (...args: never[]) => unknown>(option: string, value: unknown): T | undefined {
  return value === undefined ? undefined : func<T>(option, value);
}

/**
 * A Hono reverse proxy over the balancer's endpoints: forwards method, path, query,
 * headers (client forwarding headers replaced unless the peer is in `trustedProxies`,
 * RFC 7239 `Forwarded` and `x-forwarded-*` set, hop-by-hop ones dropped: see
 * {@link forwardingHeaders}) and
 * streaming bodies both ways; aborts the upstream request when the client goes away;
 * answers 503 when no upstream is available, 502 when the upstream cannot be reached
 * and 504 when it does not answer within `timeoutMs`, with a JSON body saying which;
 * answers 400 (`ERR_BALLAST_BAD_REQUEST`) to an absolute-form request target naming
 * another host than `Host`, and forwards none of it.
 * Upstream 5xx responses pass through and count as failures for outlier detection.
 *
 * @throws {InvalidOptionError} when `balancer` is missing or another option is invalid.
 * @example
 * ```ts
 * const lb = new LoadBalancer({
 *   endpoints: [{ id: 'api-1', address: 'http://10.0.0.1:8080' }, { id: 'api-2', address: 'http://10.0.0.2:8080' }],
 *   strategy: peakEwma(),
 * });
 * const app = new Hono();
 * app.all('/api/*', balancedProxy({ balancer: lb, timeoutMs: 5_000 }));
 * ```
 */
export const balancedProxy = (options: BalancedProxyOptions): MiddlewareHandler => {
  if (typeof options?.balancer?.pick !== 'function') throw new InvalidOptionError('balancer', 'a LoadBalancer', options?.balancer);
  const { balancer } = options;
  const key = optionalFunc<(c: Context) => string | undefined>('key', options.key);
  const path = optionalFunc<(c: Context) => string>('path', options.path);
  const ipOf = optionalFunc<(c: Context) => string | undefined>('clientIp', options.clientIp) ?? clientIp;
  const onRejected = optionalFunc<(c: Context, error: unknown) => Response | Promise<Response>>('onRejected', options.onRejected) ?? reject;
  const resolved = resolveForwardOptions(options);
  const forwarding = createForwarding(options);
  return async function balancedProxy(c) {
    const request = c.req.raw;
    const url = new URL(request.url);
    const foreign = foreignHost(url, request.headers.get('host'));
    if (foreign !== undefined) {
      return c.json(errorBody('ERR_BALLAST_BAD_REQUEST', foreignHostMessage(url, foreign)), 400);
    }
    const forwarded = forwarding.headers(request.headers, {
      address: ipOf(c),
      protocol: url.protocol === 'https:' ? 'https' : 'http',
      host: url.host,
    });
    // fetch would decompress a compressed answer and leave its headers stale: ask for none.
    delete forwarded['accept-encoding'];
    const headers = new Headers();
    for (const [name, value] of Object.entries(forwarded)) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
    const hasBody = !BODYLESS.has(request.method) && request.body !== null;
    const init: RequestInit & { duplex?: 'half' } = {
      method: request.method,
      headers,
      body: hasBody ? request.body : undefined,
      redirect: 'manual',
    };
    if (hasBody) init.duplex = 'half';
    const affinity = key?.(c);
    let upstream: Response;
    try {
      upstream = await forward(
        balancer,
        {
          path: path ? path(c) : url.pathname + url.search,
          init,
          signal: request.signal,
          pick: affinity === undefined ? undefined : { key: affinity },
        },
        resolved,
      );
    } catch (error) {
      return onRejected(c, error);
    }
    const responseHeaders = stripHopByHop(new Headers(upstream.headers));
    if (responseHeaders.has('content-encoding')) {
      responseHeaders.delete('content-encoding');
      responseHeaders.delete('content-length');
    }
    return new Response(upstream.body, { status: upstream.status, statusText: upstream.statusText, headers: responseHeaders });
  };
};

function reject(c: Context, error: unknown): Response {
  const answer = proxyRejection(error);
  if (answer) return c.json(answer.body, answer.status as 502, answer.headers);
  if (c.req.raw.signal.aborted) return new Response(null, { status: 499 });
  throw error;
}

/**
 * The client's IP address under `@hono/node-server` (the socket's remote address), or
 * `undefined` elsewhere. Use it as the key for IP-hash affinity:
 * `balancedProxy({ balancer, key: clientIp })` with `strategy: hashAffinity()`.
 */
export function clientIp(c: Context): string | undefined {
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress;
}
