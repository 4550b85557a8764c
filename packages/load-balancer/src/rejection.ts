/**
 * What every proxy of this package (Node, Hono, Express, Fastify) answers when a request
 * could not be proxied: one table, in Ballast's error body `{ error: { code, message } }`.
 */
import { type ErrorAnswer, errorAnswer, isBallastError, retryAfterSeconds } from '@ballast/common';
import { isNoEndpointAvailableError } from './errors.ts';
import { isUpstreamError } from './forward.ts';

/**
 * The answer to a proxy failure: 503 + `Retry-After` when no endpoint is available (or an
 * `attempt` hook reported an open circuit), 502 when the upstream could not be reached,
 * 504 when it did not answer in time; another Ballast error keeps its code, with 504 for
 * a timeout and 502 otherwise. `undefined` for anything else (the adapter decides).
 */
export function proxyRejection(error: unknown): ErrorAnswer | undefined {
  if (isNoEndpointAvailableError(error)) {
    return errorAnswer(503, error.code, error.message, { 'retry-after': String(retryAfterSeconds(1_000)) });
  }
  if (isUpstreamError(error)) {
    return errorAnswer(error.reason === 'timeout' ? 504 : 502, error.code, error.message, {}, { upstream: error.endpoint.id });
  }
  if (!isBallastError(error)) return undefined;
  if (error.code === 'ERR_BALLAST_TIMEOUT') return errorAnswer(504, error.code, error.message);
  if (error.code === 'ERR_BALLAST_CIRCUIT_OPEN') {
    const after = (error as { retryAfterMs?: unknown }).retryAfterMs;
    return errorAnswer(503, error.code, error.message, {
      'retry-after': String(retryAfterSeconds(typeof after === 'number' ? after : 1_000)),
    });
  }
  return errorAnswer(502, error.code, error.message);
}

/** The answer to a failure that is none of the above: 502, `ERR_BALLAST_UPSTREAM`. */
export const UPSTREAM_FAILED: ErrorAnswer = errorAnswer(502, 'ERR_BALLAST_UPSTREAM', 'the upstream request failed');
