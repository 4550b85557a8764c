import { BallastError, isBallastError, withoutStack } from '@ballast/common';

/** The codes of this package's own errors (`@ballast/common`'s are `CommonErrorCode`). Why a request was shed is `ShedError.reason`. */
export type BackpressureErrorCode = 'ERR_BALLAST_SHED';

/**
 * Why a request was turned away.
 *
 * - `limit`: the concurrency limit was reached and the request could not wait (no queue, or `tryAcquire`).
 * - `queueFull`: the wait queue was full, or a higher-priority request took this one's place.
 * - `queueTimeout`: the request waited longer than `queueTimeoutMs`.
 * - `codel`: the request waited longer than the CoDel target while a standing queue had formed.
 * - `rateLimited`: a rate limit (token bucket, GCRA, Redis) refused it.
 * - `throttled`: client-side adaptive throttling rejected it locally.
 * - `closed`: the limiter was closed.
 */
export type ShedReason = 'limit' | 'queueFull' | 'queueTimeout' | 'codel' | 'rateLimited' | 'throttled' | 'closed';

/**
 * Thrown (or rejected with) when a request is shed. Carries the `reason` and a
 * `retryAfterMs` hint suitable for a `Retry-After` header. Built without a stack
 * trace: shedding is a hot path under overload.
 */
export class ShedError extends BallastError {
  declare readonly code: 'ERR_BALLAST_SHED';
  /** Why the request was shed. */
  readonly reason: ShedReason;
  /** When the caller may usefully try again, in milliseconds (0 when unknown). */
  readonly retryAfterMs: number;

  constructor(reason: ShedReason, retryAfterMs = 0, message = `request shed: ${reason}`) {
    super('ERR_BALLAST_SHED', message);
    this.reason = reason;
    this.retryAfterMs = retryAfterMs;
  }
}

/** True for a {@link ShedError} from any copy of `@ballast/backpressure`. */
export function isShedError(value: unknown): value is ShedError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_SHED';
}

/** Builds a {@link ShedError} without capturing a stack trace. */
export function shedError(reason: ShedReason, retryAfterMs = 0): ShedError {
  return withoutStack(() => new ShedError(reason, retryAfterMs));
}
