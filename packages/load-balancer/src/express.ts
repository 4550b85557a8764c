/**
 * Express 5 reverse proxy over a balancer, built on `nodeProxy` (undici connection pools,
 * bodies streamed both ways, RFC 7239 forwarding headers, retries of requests that never
 * reached an upstream). Same balancing, options and error answers as
 * `@ballast/load-balancer/node` and `/hono`.
 */
import { sendErrorAnswer } from '@ballast/common';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { type BalancedProxyOptionsOf, frameworkProxy } from './framework-proxy.ts';
import { proxyRejection, UPSTREAM_FAILED } from './rejection.ts';

/**
 * Options of {@link balancedProxy}: those of `nodeProxy`, with `timeoutMs`, `key` and `path`
 * taking the Express request, and `onRejected(req, res, error)` sending the answer.
 */
export type BalancedProxyOptions = BalancedProxyOptionsOf<Request, (req: Request, res: Response, error: unknown) => void | Promise<void>>;

/** The middleware; `close()` closes its upstream connection pools once requests in flight finish. */
export type BalancedProxyMiddleware = RequestHandler & AsyncDisposable & { close(): Promise<void> };

interface Context {
  readonly request: Request;
  readonly res: Response;
  readonly next: NextFunction;
}

/** True when a body parser read a body the proxy cannot send on (parsed into an object or a string). */
function bodyLost(req: Request): boolean {
  if (!req.readableEnded || req.body instanceof Uint8Array) return false;
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

/**
 * An Express reverse proxy over the balancer's endpoints (`nodeProxy` under the hood):
 * forwards the request's method, whole path (`req.originalUrl`, mount path included),
 * query, headers and streaming body, and answers 503 when no upstream is available, 502
 * when the upstream cannot be reached and 504 when it does not answer within `timeoutMs`,
 * with the JSON error body. Mount it before body parsers: a body read by `express.raw()`
 * (a `Buffer` in `req.body`) is sent whole, a body parsed into anything else cannot be, and
 * the request goes to the error handler with an error that says so.
 *
 * @throws {InvalidOptionError} when `balancer` is missing or another option is invalid.
 * @example
 * ```ts
 * const proxy = balancedProxy({ balancer, timeoutMs: 5_000 });
 * app.use('/api', proxy);
 * // on shutdown: await proxy.close()
 * ```
 */
export const balancedProxy = (options: BalancedProxyOptions): BalancedProxyMiddleware => {
  const proxy = frameworkProxy<Request, Context, BalancedProxyOptions['onRejected']>(options, {
    path: (c) => c.request.originalUrl,
    body: (c) => (c.request.readableEnded && c.request.body instanceof Uint8Array ? c.request.body : undefined),
    reject: (c, error, onRejected) => {
      if (!onRejected) {
        sendErrorAnswer(c.res, proxyRejection(error) ?? UPSTREAM_FAILED);
        return;
      }
      Promise.resolve()
        .then(() => onRejected(c.request, c.res, error))
        .catch(c.next);
    },
  });
  const middleware = function balancedProxy(req: Request, res: Response, next: NextFunction): void {
    if (bodyLost(req)) {
      next(
        new Error(
          'balancedProxy: a body parser mounted before the proxy read the request body; mount balancedProxy() before body parsers, or read the body with express.raw() so its bytes can be sent on',
        ),
      );
      return;
    }
    void proxy.run(req, res, { request: req, res, next });
  };
  return Object.assign(middleware, { close: proxy.close, [Symbol.asyncDispose]: proxy.close });
};
