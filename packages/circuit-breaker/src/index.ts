// Shared from @ballast/common and named in this package's README: importable from here, so strict
// installs (pnpm, npm --install-strategy=linked) need no direct @ballast/common dependency.
export { BallastError, InvalidOptionError, isBallastError, isInvalidOptionError, retryAfterSeconds, TimeoutError } from '@ballast/common';
export { type BreakerExecuteOptions, CircuitBreaker, type ExecuteOptions } from './circuit-breaker.ts';
export {
  BreakerDisposedError,
  BrokenCircuitError,
  type CircuitBreakerError,
  type CircuitBreakerErrorCode,
  isBreakerDisposedError,
  isBrokenCircuitError,
  isTimeoutError,
} from './errors.ts';
export { type CircuitBreakerFetch, type CircuitBreakerFetchOptions, circuitBreakerFetch, isServerFailure } from './fetch.ts';
export type { OpossumBreaker, OpossumOptions, OpossumStats } from './opossum-types.ts';
export type { CircuitBreakerOptions, DeprecatedCircuitBreakerOptions } from './options.ts';
export {
  BreakerRegistry,
  type BreakerRegistryEvents,
  type BreakerRegistryOptions,
  type BreakerRegistryStats,
  type EvictionReason,
} from './registry.ts';
export type {
  CallOutcome,
  CircuitBreakerEvents,
  CircuitBreakerSnapshot,
  CircuitBreakerStats,
  CircuitState,
  OpenReason,
} from './state.ts';
