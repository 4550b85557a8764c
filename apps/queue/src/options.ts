import { durationMs, func, integer } from '@ballast/common';
import { QueueError, type QueueOptions, type QueueStats, type ResolvedQueueOptions } from './types.ts';

/** Validates {@link QueueOptions} and fills in defaults. */
export function resolveQueueOptions(options: QueueOptions): ResolvedQueueOptions {
  return {
    maxDepth: integer('maxDepth', options.maxDepth ?? 1000, { min: 1 }),
    leaseMs: durationMs('leaseMs', options.leaseMs ?? 10_000, { min: 30 }),
    resultTtlMs: durationMs('resultTtlMs', options.resultTtlMs ?? 600_000, { min: 1 }),
    maxAttempts: integer('maxAttempts', options.maxAttempts ?? 3, { min: 1 }),
    now: func('now', options.now ?? Date.now),
    ledgerRetentionMs: durationMs('ledgerRetentionMs', options.ledgerRetentionMs ?? 3_600_000, { min: 1 }),
    serviceHalfLifeMs: durationMs('serviceHalfLifeMs', options.serviceHalfLifeMs ?? 10_000, { min: 1 }),
  };
}

/** A zeroed stats object. */
export function emptyStats(): QueueStats {
  return { depth: 0, enqueued: 0, rejectedFull: 0, completed: 0, failed: 0, expired: 0, cancelled: 0, reclaimed: 0, orphaned: 0 };
}

/** The error `wait()` rejects with for an id the queue does not know. */
export function unknownJob(id: string): QueueError {
  return new QueueError('ERR_BALLAST_QUEUE_UNKNOWN_JOB', `unknown job ${JSON.stringify(id)}`);
}

/** The failure stored for a job delivered more than `maxAttempts` times. */
export function poison(id: string, maxAttempts: number): { code: string; message: string } {
  return {
    code: 'ERR_BALLAST_QUEUE_TOO_MANY_ATTEMPTS',
    message: `job ${id} was delivered ${maxAttempts} times and never finished; its consumers keep dying`,
  };
}

/** `bytes` as a Buffer without copying (the queue owns what it is given: callers must not reuse it). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
