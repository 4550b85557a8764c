import { TimeoutError } from '@ballast/common';
import type { Expirable, ExpiryQueue } from './expiry.ts';
import type { Attempt, AttemptContext } from './policy.ts';

/**
 * One attempt's context and lifetime. Its signal is created only when the operation
 * reads it (an operation that ignores it pays nothing for it), and the attempt's
 * promise is settled directly by `abort()`, so a timeout, a deadline, the caller's
 * abort or close() end the attempt even when the operation ignores its signal.
 */
export class AttemptScope implements AttemptContext, Expirable {
  readonly attempt: number;
  /** Clock time of the timeout, when one is set. */
  expiresAt: number = Number.POSITIVE_INFINITY;
  /** True once the time limit fired and it was the call's deadline rather than `timeoutMs`. */
  deadlineExpired = false;
  #limitMs = 0;
  #byDeadline = false;
  readonly #parent: AbortSignal | undefined;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #reject: ((reason: unknown) => void) | undefined;
  #queue: ExpiryQueue | undefined;
  readonly #onParentAbort: (() => void) | undefined;

  constructor(attempt: number, parent: AbortSignal | undefined) {
    this.attempt = attempt;
    this.#parent = parent;
    if (parent) {
      this.#onParentAbort = () => this.abort(parent.reason);
      if (parent.aborted) this.abort(parent.reason);
      else parent.addEventListener('abort', this.#onParentAbort, { once: true });
    }
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  /**
   * Aborts the attempt with a `TimeoutError(limitMs)` at clock time `now + limitMs`.
   * `byDeadline` says the limit is what was left of the call's deadline.
   */
  limit(queue: ExpiryQueue, now: number, limitMs: number, byDeadline: boolean): void {
    this.#queue = queue;
    this.#limitMs = limitMs;
    this.#byDeadline = byDeadline;
    this.expiresAt = now + limitMs;
    queue.add(this);
  }

  expire(): void {
    this.deadlineExpired = this.#byDeadline;
    this.abort(new TimeoutError(Math.max(0, this.#limitMs)));
  }

  /** Aborts the signal (if made) and rejects the attempt with `reason`. Idempotent. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.release();
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  /** Runs `fn` in this scope: settles with it, or rejects when the scope aborts first. */
  run<T>(fn: Attempt<T>): Promise<T> {
    let pending: T | PromiseLike<T>;
    try {
      pending = fn(this);
    } catch (error) {
      return Promise.reject(error);
    }
    if (typeof (pending as { then?: unknown } | null)?.then !== 'function') return Promise.resolve(pending);
    return new Promise<T>((resolve, reject) => {
      if (this.#aborted) reject(this.#reason);
      this.#reject = reject;
      // Always handled, so a rejection after the race is lost is never unhandled.
      (pending as PromiseLike<T>).then(resolve, reject);
    });
  }

  /** Drops the expiry and the listener on the caller's signal. Idempotent. */
  release(): void {
    if (this.#queue) {
      this.#queue.delete(this);
      this.#queue = undefined;
    }
    if (this.#onParentAbort) this.#parent?.removeEventListener('abort', this.#onParentAbort);
  }
}
