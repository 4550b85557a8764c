import { BallastError, isBallastError } from '@ballast/common';

/** The codes of this package's own errors (`@ballast/common`'s are `CommonErrorCode`); `switch (error.code)` on a {@link RetryError} narrows. */
export type RetryErrorCode = 'ERR_BALLAST_RETRY_BUDGET_EXHAUSTED' | 'ERR_BALLAST_RETRY_DEADLINE' | 'ERR_BALLAST_RETRY_CLOSED';

/**
 * Base of the errors `@ballast/retry` throws itself. Errors from the operation are
 * never wrapped in one of these when retrying simply runs out of attempts: the last
 * error is rethrown as it was, as p-retry does.
 */
export class RetryError extends BallastError {
  declare readonly code: RetryErrorCode;
  /** Attempts made before this error ended the call (0 when none started). */
  readonly attempts: number;
  constructor(code: RetryErrorCode, message: string, attempts: number, cause?: unknown) {
    super(code, message, cause === undefined ? undefined : { cause });
    this.attempts = attempts;
  }
}

/**
 * The retry budget refused a retry (or the hedge a hedged call was waiting for), so the
 * call ended. It carries the last outcome: `cause` when it was an error, `lastValue`
 * when it was a value the classifier wanted retried (e.g. a 503 response). A value
 * carried here belongs to the caller, like a returned one: `discard` is not called on it.
 */
export class RetryBudgetExhaustedError<V = unknown> extends RetryError {
  declare readonly code: 'ERR_BALLAST_RETRY_BUDGET_EXHAUSTED';
  /** The last attempt's value when it ended on a value (`undefined` when it ended on an error). */
  readonly lastValue: V | undefined;
  constructor(attempts: number, cause?: unknown, lastValue?: V) {
    super('ERR_BALLAST_RETRY_BUDGET_EXHAUSTED', `retry budget exhausted after ${attempts} attempt(s)`, attempts, cause);
    this.lastValue = lastValue;
  }
}

/**
 * The overall deadline (`deadlineMs`) passed, or the next retry could not start before
 * it: the attempt in flight was aborted, or the wait was not started. `cause` is the last error.
 */
export class RetryDeadlineError extends RetryError {
  declare readonly code: 'ERR_BALLAST_RETRY_DEADLINE';
  /** The deadline, ms from the start of the call. */
  readonly deadlineMs: number;
  constructor(deadlineMs: number, attempts: number, cause?: unknown) {
    super('ERR_BALLAST_RETRY_DEADLINE', `retry deadline of ${deadlineMs} ms exceeded after ${attempts} attempt(s)`, attempts, cause);
    this.deadlineMs = deadlineMs;
  }
}

/** The policy was closed: new calls are refused and calls in flight are aborted with this. */
export class RetryPolicyClosedError extends RetryError {
  declare readonly code: 'ERR_BALLAST_RETRY_CLOSED';
  constructor() {
    super('ERR_BALLAST_RETRY_CLOSED', 'retry policy is closed', 0);
  }
}

/** True for any error `@ballast/retry` throws, from any copy of the package. */
export function isRetryError(value: unknown): value is RetryError {
  return isBallastError(value) && value.code.startsWith('ERR_BALLAST_RETRY_');
}

/** True for a {@link RetryBudgetExhaustedError} from any copy of the package. */
export function isRetryBudgetExhaustedError(value: unknown): value is RetryBudgetExhaustedError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_RETRY_BUDGET_EXHAUSTED';
}

/** True for a {@link RetryDeadlineError} from any copy of the package. */
export function isRetryDeadlineError(value: unknown): value is RetryDeadlineError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_RETRY_DEADLINE';
}

/** True for a {@link RetryPolicyClosedError} from any copy of the package. */
export function isRetryPolicyClosedError(value: unknown): value is RetryPolicyClosedError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_RETRY_CLOSED';
}
