// Shared from @ballast/common and named in this package's README: importable from here, so strict
// installs (pnpm, npm --install-strategy=linked) need no direct @ballast/common dependency.
export { BallastError, InvalidOptionError, isBallastError, isInvalidOptionError, isTimeoutError, TimeoutError } from '@ballast/common';
export {
  type Backoff,
  type BackoffSequence,
  type ConstantBackoffOptions,
  constantBackoff,
  type DecorrelatedJitterBackoffOptions,
  decorrelatedJitterBackoff,
  type ExponentialBackoffOptions,
  exponentialBackoff,
} from './backoff.ts';
export {
  RatioBudget,
  type RatioBudgetOptions,
  type RetryBudget,
  type RetryBudgetStats,
  ratioBudget,
  TokenBucketBudget,
  type TokenBucketBudgetOptions,
  tokenBucketBudget,
} from './budget.ts';
export {
  type AttemptOutcome,
  defaultRetryOn,
  isConnectionError,
  isRetryableError,
  isRetryableResponse,
  type Outcome,
  RETRYABLE_STATUSES,
  type RetryClassifier,
} from './classify.ts';
export {
  isRetryBudgetExhaustedError,
  isRetryDeadlineError,
  isRetryError,
  isRetryPolicyClosedError,
  RetryBudgetExhaustedError,
  RetryDeadlineError,
  RetryError,
  type RetryErrorCode,
  RetryPolicyClosedError,
} from './errors.ts';
export { type RetryingFetch, type RetryingFetchOptions, retryingFetch } from './fetch.ts';
export {
  type Attempt,
  type AttemptContext,
  type ExecuteOptions,
  type GiveUpReason,
  hedge,
  type RetryEvents,
  type RetryExecuteOptions,
  type RetryOptions,
  RetryPolicy,
  type RetryStats,
  retry,
} from './policy.ts';
export { defaultDelayHint, delayFromHeaders, type HeadersLike, parseRetryAfter } from './retry-after.ts';
