export { parseAddresses, type QueueFromEnvOptions, queueFromEnv } from './config.ts';
export { type FailoverRetry, failoverRetry } from './failover-retry.ts';
export { InProcessQueue, type InProcessQueueOptions } from './in-process.ts';
export type { MembershipSnapshot } from './membership.ts';
export { resolveQueueOptions } from './options.ts';
export { RedisQueue, type RedisQueueOptions } from './redis.ts';
export { FITS, FORMATS, MAX_DIMENSION, MAX_EFFORT, parseResizeParams, type ResizeParams } from './resize-params.ts';
export {
  type Consumer,
  isQueueError,
  type Job,
  type JobInput,
  type JobParams,
  type JobQueue,
  type JobResult,
  type JobState,
  type Lease,
  type LedgerEntry,
  type LedgerOutcome,
  type LedgerReadOptions,
  QueueClosedError,
  QueueError,
  QueueFullError,
  type QueueOptions,
  type QueueStats,
  QueueUnavailableError,
  type ResolvedQueueOptions,
  SERVICE_RING_SIZE,
  type ServiceStats,
} from './types.ts';
