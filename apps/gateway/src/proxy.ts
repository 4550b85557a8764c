import type { IncomingMessage } from 'node:http';
import { annotate, CLIENT_HEADER, nodeRequest, nodeResponse, writeHttpError } from '@ballast/app-shared';
import { type AttemptHook, type NodeProxy, nodeProxy } from '@ballast/load-balancer/node';
import type { RatioBudget } from '@ballast/retry';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context, Handler } from 'hono';
import { upstreamFailure } from './errors.ts';
import { answerOf, type GatewayEnv } from './middleware.ts';
import type { ResolvedGatewayOptions } from './options.ts';
import { judge, type UpstreamPool } from './upstreams.ts';

/** The gateway's data path: @ballast/load-balancer's Node proxy, and the handler that hands requests to it. */
export interface GatewayProxy extends AsyncDisposable {
  readonly handler: Handler<GatewayEnv>;
  close(): Promise<void>;
}

const DEADLINE = /[?&]deadlineMs=(\d{1,9})(?:&|$)/;

/**
 * The time an attempt may wait for an upstream's answer: the request's own deadline
 * (`deadlineMs`, else the API's default) plus a grace, never over `upstreamTimeoutMs`.
 * An API server that says nothing by then (paused, stuck) is cut off: the gateway
 * answers 504 and closes the upstream request, which cancels the job once the server
 * notices its client has gone.
 */
export function attemptTimeoutMs(o: ResolvedGatewayOptions, target: string): number {
  const match = DEADLINE.exec(target);
  const deadline = match ? Number(match[1]) : o.defaultDeadlineMs;
  return Math.min(o.upstreamTimeoutMs, deadline + o.deadlineGraceMs);
}

/** Headers the gateway sets itself on every forwarded request. */
const OWN_HEADERS = ['x-request-id', CLIENT_HEADER];

/** A client cannot have the gateway's own headers dropped by nominating them in `Connection`. */
function keepOwnHeaders(incoming: IncomingMessage): void {
  const connection = incoming.headers.connection;
  if (connection === undefined) return;
  incoming.headers.connection = connection
    .split(',')
    .filter((token) => !OWN_HEADERS.includes(token.trim().toLowerCase()))
    .join(',');
}

/**
 * Forwards each request through `nodeProxy`: bodies already buffered by the chain,
 * forwarding headers rebuilt (client ones kept only from trusted proxies), each attempt
 * through its upstream's circuit breaker, a request that never reached an upstream resent
 * to another under the retry budget, failures answered with documented codes.
 */
export function gatewayProxy(o: ResolvedGatewayOptions, pool: UpstreamPool, budget: RatioBudget, onRetry: () => void): GatewayProxy {
  const contexts = new WeakMap<IncomingMessage, Context<GatewayEnv>>();
  const attempt: AttemptHook = async (context, send) => {
    if (context.attempt > 1) onRetry();
    const response = await pool.attempt(context.endpoint.id, context.signal, send);
    const c = contexts.get(context.request);
    if (c) {
      c.set('answer', answerOf(response));
      annotate(c, { upstream: context.endpoint.id });
      const outgoing = nodeResponse(c);
      outgoing?.setHeader('x-upstream', context.endpoint.id);
      outgoing?.setHeader('x-request-id', c.var.requestId);
    }
    return response;
  };
  const proxy: NodeProxy = nodeProxy({
    balancer: pool.balancer,
    attempt,
    maxAttempts: o.maxAttempts,
    retryBudget: budget,
    timeoutMs: (request) => attemptTimeoutMs(o, request.url ?? '/'),
    isFailure: (response) => judge({ ok: true, value: response }) === 'failure',
    body: (request) => contexts.get(request)?.var.body,
    trustedProxies: o.trustedProxies,
    onRejected: (error, request, response) => {
      const c = contexts.get(request);
      const answer = upstreamFailure(error);
      c?.var.log.warn({ err: error, status: answer.status }, 'upstream failure');
      if (c) annotate(c, { upstream: 'none' });
      writeHttpError(response, answer, c ? { 'x-request-id': c.var.requestId } : {});
    },
  });
  const handler: Handler<GatewayEnv> = async (c) => {
    const incoming = nodeRequest(c);
    const outgoing = nodeResponse(c);
    if (!incoming || !outgoing) throw new Error('the gateway proxies under @hono/node-server only (it needs Node’s request and response)');
    // The id the chain settled on (the client's, if it was a plain token) is the one sent on,
    // and the client the gateway decided on replaces whatever a client claimed to be.
    incoming.headers['x-request-id'] = c.var.requestId;
    incoming.headers[CLIENT_HEADER] = c.var.client;
    keepOwnHeaders(incoming);
    contexts.set(incoming, c);
    await proxy(incoming, outgoing);
    return RESPONSE_ALREADY_SENT;
  };
  return { handler, close: () => proxy.close(), [Symbol.asyncDispose]: () => proxy.close() };
}
