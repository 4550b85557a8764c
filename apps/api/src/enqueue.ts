import { failoverRetry, type JobInput, type JobQueue } from '@ballast/app-queue';

/** Enqueues a job, riding out a failover of the queue (see {@link enqueueAcrossFailover}). */
export interface FailoverEnqueue extends Disposable {
  /** Resolves with the job's id once the queue acknowledged it; rejects as `queue.enqueue` does once retrying is over. */
  enqueue(input: JobInput & { id: string }): Promise<string>;
}

/**
 * Enqueue that rides out a failover of the queue (the queue's `failoverRetry`): an
 * enqueue refused because the queue is unavailable is tried again with the same job id
 * for at most `retryMs`, and never past three quarters of the time left before the
 * job's deadline, so that the job still has time to run. What is still refused then is
 * refused (503 `ERR_BALLAST_QUEUE_UNAVAILABLE`).
 *
 * @param retryMs how long one enqueue may keep retrying, ms: size it to the queue's failover.
 */
export function enqueueAcrossFailover(queue: JobQueue, retryMs: number): FailoverEnqueue {
  const retry = failoverRetry();
  return {
    enqueue(input) {
      const now = Date.now();
      const giveUpAt = Math.min(now + retryMs, now + Math.max(0, input.deadlineAt - now) * 0.75);
      return retry.run(() => queue.enqueue(input), giveUpAt);
    },
    [Symbol.dispose]: () => retry[Symbol.dispose](),
  };
}
