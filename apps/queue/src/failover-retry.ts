import { exponentialBackoff, RetryPolicy } from '@ballast/retry';
import { QueueUnavailableError } from './types.ts';

/** Runs queue writes again while the queue fails over (see {@link failoverRetry}). */
export interface FailoverRetry extends Disposable {
  /**
   * Runs `write`, and again while it is refused with {@link QueueUnavailableError}, until
   * `giveUpAt` (epoch ms); then the last refusal is thrown. Other errors are thrown at once.
   */
  run<T>(write: () => Promise<T>, giveUpAt: number): Promise<T>;
}

/**
 * Rides out a failover of the queue: a write refused because the queue is unavailable
 * (Redis not reachable while Sentinel promotes a replica, a write not replicated in time,
 * a connection being replaced) is tried again with backoff (100 ms doubling to 1 s,
 * jittered) until a time the caller sets, typically from the job's deadline and the
 * failover time of the queue (Sentinel's `down-after-milliseconds`, the election, the
 * clients' reconnect).
 *
 * Only for writes that are idempotent, as the queue's are: an enqueue with its job id (a
 * job already there is acknowledged once replicated, never added twice) and a job's
 * finish (its final state is stored once; a second finish stores nothing).
 * A full queue is not retried: that is load, answered at once.
 */
export function failoverRetry(): FailoverRetry {
  const policy = new RetryPolicy<unknown>({
    maxAttempts: 1000, // bounded by time (the classifier below), not by count
    deadlineMs: Number.POSITIVE_INFINITY,
    backoff: exponentialBackoff({ baseMs: 100, maxMs: 1000, jitter: 'equal' }),
    delayHint: false,
  });
  return {
    run: (write, giveUpAt) =>
      policy.execute(write, {
        retryOn: (outcome) => !outcome.ok && outcome.error instanceof QueueUnavailableError && Date.now() < giveUpAt,
      }),
    [Symbol.dispose]: () => policy.close(),
  };
}
