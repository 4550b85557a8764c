/**
 * {@link nodeProxy} driven by a framework (the shared core of the Express and Fastify
 * adapters): the options that see the request take the framework's request object, and
 * each Node request carries its framework objects beside it while it is proxied.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { func, InvalidOptionError } from '@ballast/common';
import { type NodeProxy, type NodeProxyOptions, nodeProxy } from './node.ts';

/**
 * Options of `balancedProxy()` in the Express and Fastify adapters: those of
 * {@link nodeProxy}, with `timeoutMs`, `key` and `path` taking the framework's request
 * (`Req`) and `onRejected` in the framework's shape.
 */
export interface BalancedProxyOptionsOf<Req, OnRejected>
  extends Omit<NodeProxyOptions, 'timeoutMs' | 'key' | 'path' | 'body' | 'onRejected'> {
  /**
   * Time allowed for the upstream's response headers, ms, from the first attempt (retries
   * share what is left); a function derives it per request. A result ≤ 0 answers 504
   * without contacting an upstream.
   * @default 30_000
   */
  timeoutMs?: number | ((request: Req) => number);
  /** Affinity key for `hashAffinity()`, e.g. the client address or a session cookie. @default none */
  key?: (request: Req) => string | undefined;
  /** Path and query sent upstream. @default the request's own path and query, as the client sent it */
  path?: (request: Req) => string;
  /**
   * Answers a request that could not be proxied. @default the JSON answers of `nodeProxy`
   * (503 no endpoint, 502 unreachable, 504 timeout). Not called when the client has gone
   * away, nor once the response head was sent (the response is then cut off).
   */
  onRejected?: OnRejected;
}

/** The framework objects of one request, with its request as the options see it. */
export interface FrameworkContext<Req> {
  readonly request: Req;
}

/** A {@link NodeProxy} run with a framework context per request. */
export interface FrameworkProxy<C> extends AsyncDisposable {
  /** Proxies one request; resolves when the exchange is over (never rejects). */
  run(raw: IncomingMessage, response: ServerResponse, context: C): Promise<void>;
  /** Closes the proxy's own upstream connection pools once requests in flight finish. */
  close(): Promise<void>;
}

/**
 * Builds the proxy. `adapter.path` is the default path, `adapter.body` a body the
 * framework already read, `adapter.reject` answers a failure when no `onRejected` was given
 * (it also receives the given one, to call).
 * @throws {InvalidOptionError} naming the first invalid option.
 */
export function frameworkProxy<Req, C extends FrameworkContext<Req>, OnRejected>(
  options: BalancedProxyOptionsOf<Req, OnRejected>,
  adapter: {
    path: (context: C) => string;
    body?: (context: C) => Uint8Array | undefined;
    reject: (context: C, error: unknown, onRejected: OnRejected | undefined) => void;
  },
): FrameworkProxy<C> {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object with a balancer', options);
  const contexts = new WeakMap<IncomingMessage, C>();
  const of = (raw: IncomingMessage): C => contexts.get(raw) as C;
  const key = options.key === undefined ? undefined : func<(request: Req) => string | undefined>('key', options.key);
  const path = options.path === undefined ? undefined : func<(request: Req) => string>('path', options.path);
  const onRejected = options.onRejected === undefined ? undefined : (func('onRejected', options.onRejected) as OnRejected);
  const timeoutMs = options.timeoutMs;
  const { key: _k, path: _p, onRejected: _o, timeoutMs: _t, ...rest } = options;
  const body = adapter.body;
  const proxy: NodeProxy = nodeProxy({
    ...rest,
    timeoutMs: typeof timeoutMs === 'function' ? (raw) => timeoutMs(of(raw).request) : timeoutMs,
    key: key && ((raw) => key(of(raw).request)),
    path: path ? (raw) => path(of(raw).request) : (raw) => adapter.path(of(raw)),
    body: body && ((raw) => body(of(raw))),
    onRejected: (error, raw) => adapter.reject(of(raw), error, onRejected),
  });
  return {
    run: (raw, response, context) => {
      contexts.set(raw, context);
      return proxy(raw, response);
    },
    close: () => proxy.close(),
    [Symbol.asyncDispose]: () => proxy.close(),
  };
}
