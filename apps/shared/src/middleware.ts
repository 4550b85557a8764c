import { isInvalidOptionError } from '@ballast/common';
import type { Context, ErrorHandler, MiddlewareHandler } from 'hono';
import { errorResponse, httpErrorResponse, isHttpError } from './errors.ts';
import { type NodeBindings, nodeResponse, requestIdFrom } from './http.ts';
import type { Logger } from './log.ts';
import type { RequestMetrics } from './metrics.ts';

/** What the shared middleware puts on every request's context (`c.var`). */
export interface AppVariables {
  /** The request id: the caller's `x-request-id` when it is a plain token, else a new UUID. */
  requestId: string;
  /** The service's logger with `requestId` bound: log through this, and every line names the request. */
  log: Logger;
  /** Fields added to the request's log line and available to later middleware (`upstream`, `jobId`, …). */
  fields: Record<string, unknown>;
  /** Who is calling, as the authentication middleware decided. */
  tenant: string;
  /** When the request arrived, `performance.now()`. */
  startedAt: number;
}

/** The Hono environment of every service: Node's request/response as bindings, {@link AppVariables} as variables. */
export interface AppEnv {
  Bindings: NodeBindings;
  Variables: AppVariables;
}

/**
 * Assigns the request id (`c.var.requestId`), binds it into a child of `logger`
 * (`c.var.log`), and once the answer is ready writes one `info` line `request` with the
 * method, path, status, duration and whatever the chain added to `c.var.fields`. The
 * answer carries the id in `x-request-id`.
 */
export const requestContext = <E extends AppEnv = AppEnv>(logger: Logger): MiddlewareHandler<E> =>
  async function requestContext(c, next) {
    const startedAt = performance.now();
    const requestId = requestIdFrom(c.req.header('x-request-id'));
    const log = logger.child({ requestId });
    const ctx = c as unknown as Context<AppEnv>;
    ctx.set('startedAt', startedAt);
    ctx.set('requestId', requestId);
    ctx.set('log', log);
    ctx.set('fields', {});
    ctx.set('tenant', 'anonymous');
    await next();
    c.res.headers.set('x-request-id', requestId);
    if (log.isLevelEnabled('info')) {
      const ms = Math.round((performance.now() - startedAt) * 10) / 10;
      log.info(
        { method: c.req.method, path: c.req.path, status: answeredStatus(ctx), ms, tenant: ctx.var.tenant, ...ctx.var.fields },
        'request',
      );
    }
  };

/**
 * The status the client got: the answer's, or, when a handler wrote to Node's response
 * itself (a proxy returning `RESPONSE_ALREADY_SENT`), the one it wrote.
 */
export function answeredStatus<E extends AppEnv>(c: Context<E>): number {
  const outgoing = nodeResponse(c as unknown as Context<AppEnv>);
  return outgoing?.headersSent ? outgoing.statusCode : c.res.status;
}

/** Adds fields to the request's log line (and to `c.var.fields`). */
export function annotate<E extends AppEnv>(c: Context<E>, fields: Record<string, unknown>): void {
  Object.assign((c as unknown as Context<AppEnv>).var.fields, fields);
}

/**
 * Counts every answer in `metrics.requests{…, status}` and observes its duration, with
 * the labels `labels(c)` gives once the answer is ready.
 */
export const measure = <L extends string, E extends AppEnv = AppEnv>(
  metrics: RequestMetrics<L>,
  labels: (c: Context<E>) => Partial<Record<L, string>> = () => ({}),
): MiddlewareHandler<E> =>
  async function measure(c, next) {
    await next();
    const values = labels(c);
    const ctx = c as unknown as Context<AppEnv>;
    metrics.requests.inc({ ...values, status: String(answeredStatus(ctx)) } as Partial<Record<L | 'status', string>>);
    metrics.duration.observe(values, (performance.now() - ctx.var.startedAt) / 1000);
  };

/**
 * The authentication seam: decides who is calling before any work is done, setting
 * `c.var.tenant` or answering an error (throw an `HttpError` with 401/403/429). The
 * default lets everyone in as `anonymous`.
 */
export type Authenticate = MiddlewareHandler<AppEnv>;

/**
 * Middleware written for the shared context, used in an app whose context adds its own
 * variables (every Hono app of the system extends {@link AppEnv}).
 */
export function forApp<E extends AppEnv>(middleware: MiddlewareHandler<AppEnv>): MiddlewareHandler<E> {
  return middleware as unknown as MiddlewareHandler<E>;
}

/** The default {@link Authenticate}: every caller is tenant `anonymous`. */
export const anonymous = (): Authenticate =>
  async function anonymous(_c, next) {
    await next();
  };

/**
 * Turns a service's own errors into answers, or returns undefined to leave them to
 * {@link errorHandler}'s defaults.
 */
export type ErrorMapper<E extends AppEnv = AppEnv> = (error: unknown, c: Context<E>) => Response | undefined;

/**
 * The one error handler (`app.onError`): an `HttpError` becomes its status and the error
 * body; an invalid option, 400; whatever `map` recognises, its answer; anything else is
 * logged with its stack and answered 500 `ERR_BALLAST_INTERNAL` with a message that
 * reveals nothing internal.
 */
export function errorHandler<E extends AppEnv = AppEnv>(map: ErrorMapper<E> = () => undefined): ErrorHandler<E> {
  return (error, c) => {
    const mapped = map(error, c);
    if (mapped) return mapped;
    if (isHttpError(error)) return httpErrorResponse(error);
    if (isInvalidOptionError(error)) return errorResponse(400, error.code, error.message);
    (c as unknown as Context<AppEnv>).var.log?.error({ err: error }, 'internal error');
    return errorResponse(500, 'ERR_BALLAST_INTERNAL', 'internal error; the request id identifies it in the service log');
  };
}

/** The one not-found answer: 404 `ERR_BALLAST_NOT_FOUND`. */
export function notFound<E extends AppEnv>(c: Context<E>): Response {
  return errorResponse(404, 'ERR_BALLAST_NOT_FOUND', `nothing here answers ${c.req.method}; see the API documentation for the routes`);
}
