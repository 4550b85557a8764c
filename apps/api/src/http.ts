import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BallastError } from '@ballast/common';
import type { Context } from 'hono';

/** An error answered with `status` and a JSON body `{ error: { code, message } }`; `code` is an `ERR_BALLAST_…` string. */
export class HttpError extends BallastError {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(code, message);
    this.status = status;
    this.headers = headers;
  }
}

/** The JSON error body every Ballast service answers with. */
export function errorBody(code: string, message: string): { error: { code: string; message: string } } {
  return { error: { code, message } };
}

/**
 * Reads a request body up to `maxBytes`, refusing early: a declared
 * `Content-Length` above the limit is refused before a byte is read, and a body
 * that turns out longer is refused as soon as it crosses the limit (the rest is
 * discarded as it arrives, so the connection stays usable for the answer).
 *
 * With `incoming` (Node's request, which @hono/node-server passes as `c.env.incoming`)
 * the bytes are read from it directly, skipping the web-stream adapter and its copies.
 */
export async function readBody(request: Request, maxBytes: number, incoming?: IncomingMessage): Promise<Buffer> {
  const declared = incoming ? (incoming.headers['content-length'] ?? null) : request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge(maxBytes, Number(declared));
  if (incoming) return readIncoming(incoming, maxBytes);
  if (!request.body) return Buffer.alloc(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks, total);
}

function readIncoming(incoming: IncomingMessage, maxBytes: number): Promise<Buffer> {
  if (incoming.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    const cleanup = (): void => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
      incoming.off('close', onClose);
    };
    const onData = (chunk: Buffer): void => {
      total += chunk.byteLength;
      if (total > maxBytes) {
        cleanup();
        incoming.resume(); // discard the rest
        reject(tooLarge(maxBytes));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const onClose = (): void => {
      cleanup();
      reject(new HttpError(400, 'ERR_BALLAST_BODY_INCOMPLETE', 'the client closed the connection before sending the whole body'));
    };
    incoming.on('data', onData);
    incoming.once('end', onEnd);
    incoming.once('error', onError);
    incoming.once('close', onClose);
  });
}

function tooLarge(maxBytes: number, declared?: number): HttpError {
  const size = declared === undefined ? 'larger' : `${declared} bytes`;
  return new HttpError(413, 'ERR_BALLAST_BODY_TOO_LARGE', `request body is ${size}; the limit is ${maxBytes} bytes`);
}

/** HTTP status for a job failure code stored by a worker. */
export function statusForFailure(code: string): number {
  switch (code) {
    case 'ERR_BALLAST_INVALID_OPTION':
      return 400;
    case 'ERR_BALLAST_IMAGE_UNSUPPORTED':
      return 415;
    case 'ERR_BALLAST_IMAGE_TOO_LARGE':
      return 413;
    case 'ERR_BALLAST_IMAGE_CORRUPT':
    case 'ERR_BALLAST_IMAGE_TIMEOUT':
    case 'ERR_BALLAST_IMAGE_FAILED':
      return 422;
    default:
      return 500;
  }
}

/**
 * A signal that aborts when the client goes away before its answer is complete.
 * Under @hono/node-server it is built from Node's response (`c.env.outgoing`):
 * reading `c.req.raw.signal` there would build a full web `Request` around the body
 * stream, a copy of every body this service reads itself.
 */
export function clientSignal(c: Context): AbortSignal {
  const outgoing = (c.env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  if (!outgoing) return c.req.raw.signal;
  const controller = new AbortController();
  outgoing.once('close', () => {
    if (!outgoing.writableFinished) controller.abort(new DOMException('the client closed the connection', 'AbortError'));
  });
  return controller.signal;
}

/** Node's request under @hono/node-server, for reading the body without web-stream adapters. */
export function nodeRequest(c: Context): IncomingMessage | undefined {
  return (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
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
