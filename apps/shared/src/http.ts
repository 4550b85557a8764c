import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
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
