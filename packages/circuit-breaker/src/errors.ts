import { BallastError, type InvalidOptionError, isBallastError, type TimeoutError } from '@ballast/common';

/** The codes of this package's own errors (`@ballast/common`'s are `CommonErrorCode`). */
export type CircuitBreakerErrorCode = 'ERR_BALLAST_CIRCUIT_OPEN' | 'ERR_BALLAST_BREAKER_DISPOSED';

/**
 * Every error a breaker rejects with (besides the protected function's own): a union
 * whose `code` tells them apart, so `switch (error.code)` narrows to each class.
 */
export type CircuitBreakerError = BrokenCircuitError | BreakerDisposedError | TimeoutError | InvalidOptionError;

import type { CircuitState } from './state.ts';

/**
 * Thrown (as a rejection) when a call is refused because the circuit is open, or
 * half-open with every trial call already taken. Built without a stack trace: it is
 * the hot path of a breaker that protects a failing dependency.
 */
export class BrokenCircuitError extends BallastError {
  declare readonly code: 'ERR_BALLAST_CIRCUIT_OPEN';
  /** Name of the breaker that refused the call (its registry key for registry breakers). */
  readonly breaker: string;
  /** State of the circuit when the call was refused. */
  readonly state: Exclude<CircuitState, 'closed'>;
  /**
   * Milliseconds until the breaker admits a trial call again: the rest of the open
   * period, or, when half-open and full, until the trial calls are due to have ended.
   */
  readonly retryAfterMs: number;

  constructor(breaker: string, state: Exclude<CircuitState, 'closed'>, retryAfterMs: number) {
    super('ERR_BALLAST_CIRCUIT_OPEN', `circuit "${breaker}" is ${state === 'open' ? 'open' : 'half-open and full'}`);
    this.breaker = breaker;
    this.state = state;
    this.retryAfterMs = retryAfterMs;
  }
}

/** True for a {@link BrokenCircuitError} from any copy of this package. */
export function isBrokenCircuitError(value: unknown): value is BrokenCircuitError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_CIRCUIT_OPEN';
}

/** Thrown by a call made on a breaker after `dispose()` (or on a registry after `close()`). */
export class BreakerDisposedError extends BallastError {
  declare readonly code: 'ERR_BALLAST_BREAKER_DISPOSED';
  /** Name of the breaker or registry. */
  readonly breaker: string;
  constructor(breaker: string) {
    super('ERR_BALLAST_BREAKER_DISPOSED', `circuit breaker "${breaker}" was disposed`);
    this.breaker = breaker;
  }
}

/** True for a {@link BreakerDisposedError} from any copy of this package. */
export function isBreakerDisposedError(value: unknown): value is BreakerDisposedError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_BREAKER_DISPOSED';
}

/** True for the `TimeoutError` of `@ballast/common` (a call that exceeded its `timeoutMs`), from any copy. */
export { isTimeoutError } from '@ballast/common';
