import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TrustedProxies } from '@ballast/load-balancer';
import type { Context } from 'hono';
import { HttpError } from './errors.ts';

/** What @hono/node-server passes as `c.env`: Node's request and response. */
export interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

/** Node's request under @hono/node-server, for reading the body without web-stream adapters. */
export function nodeRequest(c: Context): IncomingMessage | undefined {
  return (c.env as NodeBindings | undefined)?.incoming;
}

/** Node's response under @hono/node-server, for piping an answer straight to the socket. */
export function nodeResponse(c: Context): ServerResponse | undefined {
  return (c.env as NodeBindings | undefined)?.outgoing;
}

/**
 * A signal that aborts when the client goes away before its answer is complete.
 * Under @hono/node-server it is built from Node's response (`c.env.outgoing`):
 * reading `c.req.raw.signal` there would build a full web `Request` around the body
 * stream, a copy of every body the service reads itself.
 */
export function clientSignal(c: Context): AbortSignal {
  const outgoing = nodeResponse(c);
  if (!outgoing) return c.req.raw.signal;
  const controller = new AbortController();
  outgoing.once('close', () => {
    if (!outgoing.writableFinished) controller.abort(new DOMException('the client closed the connection', 'AbortError'));
  });
  return controller.signal;
}

/** The peer's IP address under @hono/node-server (the socket's remote address), if known. */
export function peerAddress(c: Context): string | undefined {
  return nodeRequest(c)?.socket.remoteAddress;
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/;

/**
 * The request id to carry through the services: the caller's `x-request-id` when it is a
 * plain token of at most 128 characters, else a new UUID. It ends up in every log line
 * and in the job, so an arbitrary client string is not taken as is.
 */
export function requestIdFrom(header: string | string[] | null | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value && REQUEST_ID.test(value) ? value : randomUUID();
}

/** The declared `content-length`, or undefined when none (or a malformed one) was sent. */
export function declaredLength(c: Context): number | undefined {
  const raw = nodeRequest(c)?.headers['content-length'] ?? c.req.header('content-length');
  if (raw === undefined || !/^\d+$/.test(raw)) return undefined;
  return Number(raw);
}

/** The answer for a body over its limit: 413 `ERR_BALLAST_BODY_TOO_LARGE`. */
export function bodyTooLarge(maxBytes: number, declared?: number): HttpError {
  const size = declared === undefined ? 'larger' : `${declared} bytes`;
  return new HttpError(413, 'ERR_BALLAST_BODY_TOO_LARGE', `request body is ${size}; the limit is ${maxBytes} bytes`);
}

/** HTTP methods that carry no request body here. */
export function bodyless(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

/**
 * Response header set on a 503 that sheds load (value: the reason), and only then: a
 * gateway's adaptive throttling counts these as overload, not a 503 for a queue that is
 * unreachable during a failover.
 */
export const SHED_HEADER = 'x-ballast-shed';

/**
 * Shed reasons that concern one class of requests only, not the servers' load as a whole:
 * `costly` (the lane of costly conversions is full, see the API's fair share). A
 * gateway's adaptive throttle, which turns away requests of every kind, must not count
 * them: it would turn ordinary requests away for what costly ones did.
 */
export const CLASS_SHED_REASONS: readonly string[] = ['costly'];

/** True when a shed with this `x-ballast-shed` reason says the servers are overloaded for any request. */
export function shedsAnyRequest(reason: string | undefined): boolean {
  return reason !== undefined && !CLASS_SHED_REASONS.includes(reason);
}

/**
 * Request header naming the client as the gateway decided (the peer's address, or the
 * one a trusted proxy in front reported). The gateway always sets it, replacing any a
 * client sent; an API server believes it only from a trusted peer (see {@link clientAddressOf}).
 */
export const CLIENT_HEADER = 'x-ballast-client';

/**
 * The client's address as a service behind the gateway sees it: `x-ballast-client` when
 * the peer is trusted (a gateway), else the peer's own address ('' when unknown).
 */
export function clientAddressOf(c: Context, trusted: TrustedProxies): string {
  const peer = peerAddress(c);
  if (peer !== undefined && trusted.has(peer)) {
    const named = nodeRequest(c)?.headers[CLIENT_HEADER] ?? c.req.header(CLIENT_HEADER);
    if (typeof named === 'string' && named !== '' && named.length <= 64) return named;
  }
  return peer ?? '';
}
