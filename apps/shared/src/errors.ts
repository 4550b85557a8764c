import type { ServerResponse } from 'node:http';
import { BallastError, errorBody, retryAfterSeconds } from '@ballast/common';

/**
 * An error answered with `status` and the JSON body `{ error: { code, message } }`;
 * `code` is an `ERR_BALLAST_…` string, `headers` are added to the answer (`retry-after`, …).
 */
export class HttpError extends BallastError {
  readonly status: number;
  readonly headers: Record<string, string>;
  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}, options?: ErrorOptions) {
    super(code, message, options);
    this.status = status;
    this.headers = headers;
  }
}

/** True for an {@link HttpError} from any copy of this module (duck-typed: a status and a code). */
export function isHttpError(value: unknown): value is HttpError {
  return (
    value instanceof Error &&
    typeof (value as { status?: unknown }).status === 'number' &&
    typeof (value as { code?: unknown }).code === 'string' &&
    typeof (value as { headers?: unknown }).headers === 'object'
  );
}

/** An answer carrying the error body, with `content-type: application/json` and `headers`. */
export function errorResponse(status: number, code: string, message: string, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(errorBody(code, message)), {
    status,
    headers: { 'content-type': 'application/json', ...headers },
  });
}

/** The answer for an {@link HttpError}. */
export function httpErrorResponse(error: HttpError): Response {
  return errorResponse(error.status, error.code, error.message, error.headers);
}

/** The `Retry-After` header value for a delay in ms: `retryAfterSeconds` of @ballast/common (whole seconds, at least 1). */
export function retryAfter(ms: number): string {
  return String(retryAfterSeconds(ms));
}

/**
 * Writes an {@link HttpError} to Node's response: for handlers that answer on the socket
 * themselves (a proxy). Nothing is written once the head was sent.
 */
export function writeHttpError(response: ServerResponse, error: HttpError, headers: Record<string, string> = {}): void {
  if (response.headersSent) return;
  const text = JSON.stringify(errorBody(error.code, error.message));
  response.writeHead(error.status, {
    ...error.headers,
    ...headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(text)),
  });
  response.end(text);
}
