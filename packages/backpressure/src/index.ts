// Shared from @ballast/common and named in this package's README: importable from here, so strict
// installs (pnpm, npm --install-strategy=linked) need no direct @ballast/common dependency.
export { InvalidOptionError, isInvalidOptionError } from '@ballast/common';
export {
  type BrownoutContext,
  BrownoutController,
  type BrownoutEvents,
  type BrownoutOptions,
  type BrownoutStats,
} from './brownout.ts';
export { type BackpressureErrorCode, isShedError, ShedError, type ShedReason } from './errors.ts';
export {
  type AcquireOptions,
  type CodelOptions,
  ConcurrencyLimiter,
  type ConcurrencyLimiterEvents,
  type ConcurrencyLimiterOptions,
  type ConcurrencyLimiterStats,
  type LimiterExecuteOptions,
  Permit,
  type QueueDiscipline,
  type ReleaseOptions,
} from './limiter.ts';
export { AimdLimit, type AimdLimitOptions } from './limits/aimd.ts';
export { Gradient2Limit, type Gradient2LimitOptions } from './limits/gradient2.ts';
export { FixedLimit, type LimitAlgorithm, type LimitBounds, type LimitSample } from './limits/limit.ts';
export { VegasLimit, type VegasLimitOptions } from './limits/vegas.ts';
export {
  executeRateLimited,
  Gcra,
  KeyedRateLimiter,
  type KeyedRateLimiterOptions,
  type KeyedRateLimiterStats,
  type RateAlgorithm,
  type RateConfig,
  type RateLimitDecision,
  type RateLimitExecuteOptions,
  type RateLimiter,
  type RateLimiterEvents,
  type RateLimitOptions,
  type RateLimitPolicy,
  TokenBucket,
} from './rate-limit.ts';
export { RedisRateLimiter, type RedisRateLimiterOptions, type RedisScriptClient } from './redis-rate-limit.ts';
export {
  OutboundScheduler,
  type OutboundSchedulerEvents,
  type OutboundSchedulerOptions,
  type OutboundSchedulerStats,
  type OverflowStrategy,
  type ScheduleOptions,
} from './scheduler.ts';
export { AdaptiveThrottle, type AdaptiveThrottleEvents, type AdaptiveThrottleOptions, type AdaptiveThrottleStats } from './throttle.ts';
export { PRIORITIES, type Priority } from './wait-queue.ts';
