import { QueueFullError, QueueUnavailableError } from '@ballast/app-queue';
import { type ErrorMapper, errorResponse, retryAfter, SHED_HEADER } from '@ballast/app-shared';
import { isShedError } from '@ballast/backpressure';
import type { Counter } from 'prom-client';
import type { ApiEnv } from './options.ts';

/**
 * The API's own errors: a shed request (admission) is 503 `ERR_BALLAST_OVERLOADED` with
 * `Retry-After` and `x-ballast-shed: <reason>`; a full queue 503 `ERR_BALLAST_QUEUE_FULL`,
 * also a shed; a queue unreachable or not replicated 503 `ERR_BALLAST_QUEUE_UNAVAILABLE`,
 * not a shed (a gateway must not throttle on a failover). The rest is left to the shared
 * error handler.
 */
export function apiErrors(shed: Counter<'reason'>): ErrorMapper<ApiEnv> {
  return (error, c) => {
    if (isShedError(error)) {
      shed.inc({ reason: error.reason });
      return errorResponse(503, 'ERR_BALLAST_OVERLOADED', error.message, {
        'retry-after': retryAfter(error.retryAfterMs),
        [SHED_HEADER]: error.reason,
      });
    }
    if (error instanceof QueueFullError) {
      shed.inc({ reason: 'queueFull' });
      return errorResponse(503, error.code, error.message, { 'retry-after': '1', [SHED_HEADER]: 'queueFull' });
    }
    if (error instanceof QueueUnavailableError) {
      c.var.log.warn({ err: error }, 'queue unavailable');
      return errorResponse(503, error.code, 'the job queue is unavailable (failing over); retry shortly', { 'retry-after': '1' });
    }
    return undefined;
  };
}
