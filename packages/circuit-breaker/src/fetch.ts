import { func } from '@ballast/common';
import { type BreakerRegistry, type BreakerRegistryOptions, toRegistry } from './registry.ts';

/** Options of {@link circuitBreakerFetch}. */
export interface CircuitBreakerFetchOptions {
  /**
   * The registry holding one breaker per key (share it with the rest of the service to
   * see every breaker in one place), or options to create one.
   * @default a new registry with default options
   */
  registry?: BreakerRegistry | BreakerRegistryOptions;
  /** The fetch to protect. @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
  /** The breaker key of a request. @default the URL's origin (`https://api.example.com:8443`) */
  key?: (url: URL) => string;
  /**
   * Responses that count as failures although fetch resolved; they are still returned.
   * @default status >= 500 or 429
   */
  isFailure?: (response: Response) => boolean;
}

/** A `fetch` protected by one circuit breaker per origin (or per key). */
export interface CircuitBreakerFetch {
  (input: string | URL | Request, init?: RequestInit): Promise<Response>;
  /** The registry of breakers, by key. Close it (`registry.close()`) at shutdown. */
  readonly registry: BreakerRegistry;
}

/** The default `isFailure` of {@link circuitBreakerFetch}: a 5xx or a 429 means the upstream is in trouble. */
export function isServerFailure(response: Response): boolean {
  return response.status >= 500 || response.status === 429;
}

const byOrigin = (url: URL): string => url.origin;

/**
 * Wraps `fetch` so that outbound calls go through a circuit breaker per origin. While
 * an origin's circuit is open, calls to it reject at once with a `BrokenCircuitError`
 * (`retryAfterMs` says when to try again). Each call gets its own signal, linked to
 * `init.signal` and to the breaker's `timeout`.
 *
 * @example
 * ```ts
 * const protectedFetch = circuitBreakerFetch({ registry: { breaker: { timeout: 2_000 } } });
 * const res = await protectedFetch('https://images.internal/resize', { method: 'POST', body });
 * ```
 */
export function circuitBreakerFetch(options: CircuitBreakerFetchOptions = {}): CircuitBreakerFetch {
  const registry = toRegistry(options.registry);
  const fetchImpl = options.fetch === undefined ? globalThis.fetch : func<typeof globalThis.fetch>('fetch', options.fetch);
  const key = options.key === undefined ? byOrigin : func<(url: URL) => string>('key', options.key);
  const isFailure = options.isFailure === undefined ? isServerFailure : func<(r: Response) => boolean>('isFailure', options.isFailure);
  const protectedFetch = async function circuitBreakerFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    const request = input instanceof Request ? input : undefined;
    const url = request === undefined ? new URL(input as string | URL) : new URL(request.url);
    const callerSignal = init?.signal ?? request?.signal ?? undefined;
    return registry.get(key(url)).execute(({ signal }) => fetchImpl(input, { ...init, signal }), {
      signal: callerSignal,
      isFailure: isFailure as (r: unknown) => boolean,
    });
  };
  return Object.assign(protectedFetch, { registry }) as CircuitBreakerFetch;
}
