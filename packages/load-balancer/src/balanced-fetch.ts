import type { LoadBalancer } from './balancer.ts';
import { type ForwardOptions, forward, resolveForwardOptions } from './forward.ts';

/** Options of {@link balancedFetch}. */
export type BalancedFetchOptions = ForwardOptions;

/** `RequestInit` plus the affinity key for hash strategies. */
export interface BalancedRequestInit extends RequestInit {
  /** Affinity key (user id, cache key) for `hashAffinity()`. */
  key?: string;
}

/** A `fetch` that takes a path and sends it to the endpoint the balancer picks. */
export type BalancedFetch = (path: string, init?: BalancedRequestInit) => Promise<Response>;

/**
 * Client-side balancing with `fetch`: each call picks an endpoint, sends `path` to it
 * and reports the outcome (5xx and transport errors count as failures, the
 * `x-ballast-load` header as load). The pick is held until the response body has been
 * read or cancelled, so consume or cancel every body.
 *
 * @throws {NoEndpointAvailableError} (rejection) when no endpoint can take the request.
 * @throws {UpstreamError} (rejection) when the endpoint timed out or could not be reached.
 * @example
 * ```ts
 * const lb = new LoadBalancer({ endpoints: [{ id: 'a', address: 'http://10.0.0.1:8080' }, …] });
 * const api = balancedFetch(lb, { timeoutMs: 2_000 });
 * const res = await api('/v1/images/42', { key: userId });
 * const image = await res.arrayBuffer();
 * ```
 */
export function balancedFetch(balancer: LoadBalancer, options: BalancedFetchOptions = {}): BalancedFetch {
  const resolved = resolveForwardOptions(options);
  return async function balancedFetch(path, init = {}) {
    const { key, signal, ...rest } = init;
    return forward(balancer, { path, init: rest, signal: signal ?? undefined, pick: key === undefined ? undefined : { key } }, resolved);
  };
}
