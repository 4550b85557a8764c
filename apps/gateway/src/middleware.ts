import {
  type AppEnv,
  type AppVariables,
  type BodyBudget,
  bodyless,
  HttpError,
  type InputFormat,
  type ResolvedBodyLimits,
  readBody,
  SHED_HEADER,
  shedsAnyRequest,
  sniffImageFormat,
  unsupportedInput,
} from '@ballast/app-shared';
import type { AdaptiveThrottle, ConcurrencyLimiter } from '@ballast/backpressure';
import type { Forwarding } from '@ballast/load-balancer';
import type { UpstreamResponse } from '@ballast/load-balancer/node';
import type { Context, MiddlewareHandler } from 'hono';
import { gatewayFull, throttled } from './errors.ts';
import { retryAfterMs } from './refusals.ts';
import { judge } from './upstreams.ts';

/** What an API server answered a request (set once one did). */
export interface UpstreamAnswer {
  upstream: string;
  status: number;
  /**
   * The server shed it on purpose because it is overloaded for any request (503 with an
   * `x-ballast-shed` reason other than a class's own, such as `costly`): the throttle's
   * overload signal. A 429 (one client over its own limits) is not.
   */
  shed: boolean;
  /** The delay its `Retry-After` asked for, ms (0 when none). */
  retryAfterMs: number;
}

/** The gateway's request context: the shared variables, the buffered body and the upstream's answer. */
export interface GatewayEnv extends AppEnv {
  Variables: AppVariables & {
    body: Buffer | undefined;
    answer: UpstreamAnswer | undefined;
    /** The client's address (see {@link identifyClient}). */
    client: string;
  };
}

/** The answer of an upstream, as the throttle and the logs see it. */
export function answerOf(response: UpstreamResponse): UpstreamAnswer {
  const overload = judge({ ok: true, value: response }) === 'overload';
  const reason = response.headers[SHED_HEADER];
  return {
    upstream: response.endpoint.id,
    status: response.status,
    shed: overload && shedsAnyRequest(String(reason)),
    retryAfterMs: retryAfterMs(response.headers['retry-after']),
  };
}

const RESIZE = /^\/v1\/resize(?:\?[\w.=&-]*)?$/;
const JOB = /^\/v1\/jobs\/[\w-]{1,128}$/;
// Rendition sets: lists in the query (`widths=320,640&effort=avif:2`, commas and colons also percent-encoded); set ids carry their plan.
const RENDITIONS = /^\/v1\/renditions(?:\?(?:[\w.=&,:-]|%2[Cc]|%3[Aa])*)?$/;
const RENDITION_SET = /^\/v1\/renditions\/[\w-]{1,512}$/;
// The caller's usage: the current month, or `period=YYYY-MM` / `YYYY-MM-DD`.
const USAGE = /^\/v1\/usage(?:\?period=[\d-]{1,10})?$/;

/**
 * Lets through only the public API, as the client wrote it: `POST /v1/resize` and
 * `POST /v1/renditions` with a plain query, `GET`/`HEAD`/`DELETE /v1/jobs/<id>` and
 * `/v1/renditions/<id>`, `GET`/`HEAD /v1/usage` (optionally `?period=…`). Anything else — operational paths, other
 * spellings of them (`/%6detrics`, `/v1/../metrics`), encoded or unusual characters — is
 * answered 404 here and never reaches an API server. The raw target is what is checked,
 * and what is forwarded.
 */
export const publicRoutes = (): MiddlewareHandler<GatewayEnv> =>
  async function publicRoutes(c, next) {
    const target = c.env?.incoming?.url ?? new URL(c.req.url).pathname + new URL(c.req.url).search;
    const method = c.req.method;
    const known =
      RESIZE.test(target) || RENDITIONS.test(target)
        ? ['POST']
        : JOB.test(target) || RENDITION_SET.test(target)
          ? ['GET', 'HEAD', 'DELETE']
          : USAGE.test(target)
            ? ['GET', 'HEAD']
            : undefined;
    if (known === undefined)
      throw new HttpError(
        404,
        'ERR_BALLAST_NOT_FOUND',
        'no such resource; the API is POST /v1/resize, POST /v1/renditions, /v1/jobs/<id>, /v1/renditions/<id> and GET /v1/usage',
      );
    if (!known.includes(method)) {
      throw new HttpError(405, 'ERR_BALLAST_METHOD_NOT_ALLOWED', `allowed here: ${known.join(', ')}`, { allow: known.join(', ') });
    }
    await next();
  };

/**
 * Adaptive throttling of work-creating requests, decided before the body is read. Only
 * requests an API server answered are counted (`recordAnswer`), once they are: a request
 * still uploading, refused at the door or turned away here leaves the signal alone.
 */
export const throttleGate = (throttle: AdaptiveThrottle, minRequests: number, onThrottled: () => void): MiddlewareHandler<GatewayEnv> =>
  async function throttleGate(c, next) {
    if (bodyless(c.req.method)) return next();
    if (throttle.stats().requests >= minRequests && !throttle.admit()) {
      onThrottled();
      throw throttled();
    }
    await next();
    const answer = c.var.answer;
    if (answer) throttle.recordAnswer(!answer.shed);
  };

/** The client's address: the peer's, or, from a trusted proxy, the nearest untrusted address it reports. */
export function clientAddress(c: Context<GatewayEnv>, forwarding: Forwarding): string {
  const incoming = c.env?.incoming;
  if (!incoming) return '';
  return forwarding.clientAddress(incoming.headers, { address: incoming.socket.remoteAddress }) ?? '';
}

/**
 * Decides who the client is, once per request (`c.var.client`): what per-client limits
 * count against here, and what the API servers are told in `x-ballast-client` (set on
 * the forwarded request, replacing any a client sent), for their own per-client shares.
 */
export const identifyClient = (forwarding: Forwarding): MiddlewareHandler<GatewayEnv> =>
  async function identifyClient(c, next) {
    c.set('client', clientAddress(c, forwarding));
    await next();
  };

/**
 * Reads the whole body before anything is forwarded (`c.var.body`), within the body
 * limits and the gateway's budget of buffered bytes (and the client's share of it), which
 * the request holds until it is over: a slow or endless upload costs the gateway, never
 * an API server.
 */
export const bufferBody = (limits: ResolvedBodyLimits, budget: BodyBudget): MiddlewareHandler<GatewayEnv> =>
  async function bufferBody(c, next) {
    if (bodyless(c.req.method)) return next();
    const lease = budget.lease(c.var.client);
    try {
      c.set('body', await readBody(c, limits, lease));
      await next();
    } finally {
      lease.release();
    }
  };

/**
 * Refuses a buffered body that is not an image in an accepted format (known by its
 * first bytes) with 415 at the door: the API servers refuse it too, but an attacker's
 * SVG, PDF or text then costs them nothing.
 */
export const acceptedImages = (formats: readonly InputFormat[]): MiddlewareHandler<GatewayEnv> =>
  async function acceptedImages(c, next) {
    const body = c.var.body;
    if (body !== undefined && body.byteLength > 0) {
      const format = sniffImageFormat(body);
      if (format === undefined || !formats.includes(format)) {
        throw new HttpError(415, 'ERR_BALLAST_IMAGE_UNSUPPORTED', unsupportedInput(formats));
      }
    }
    await next();
  };

/** Caps the requests forwarded at once; beyond it, 503 `ERR_BALLAST_OVERLOADED`. */
export const admission = (limiter: ConcurrencyLimiter): MiddlewareHandler<GatewayEnv> =>
  async function admission(_c, next) {
    const permit = limiter.tryAcquire();
    if (!permit) throw gatewayFull(limiter.limit);
    try {
      await next();
    } finally {
      permit.release();
    }
  };
