export { parseAddresses, queueFromEnv } from './config.ts';
export { InProcessQueue, type InProcessQueueOptions } from './in-process.ts';
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
  QueueClosedError,
  QueueError,
  QueueFullError,
  type QueueOptions,
  type QueueStats,
  QueueUnavailableError,
  type ResolvedQueueOptions,
} from './types.ts';
