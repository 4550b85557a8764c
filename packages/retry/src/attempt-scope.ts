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
  expiryIndex = -1;
  #limitMs = 0;
  #byDeadline = false;
  readonly #parent: AbortSignal | undefined;
  #controller: AbortController | undefined;
  #aborted = false;
  #reason: unknown;
  #settled = false;
  #settle: ((ok: boolean, result: unknown) => void) | undefined;
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

  /**
   * Aborts the signal (if made) and rejects the attempt with `reason`. Idempotent, and a
   * no-op once the attempt has settled: the signal of an attempt that delivered its
   * value stays live, since the value may still be streaming (a fetch response body).
   */
  abort(reason: unknown): void {
    if (this.#aborted || this.#settled) return;
    this.#aborted = true;
    this.#reason = reason;
    this.release();
    this.#controller?.abort(reason);
    this.#settle?.(false, reason);
  }

  /**
   * Runs `fn` in this scope and settles with `onValue(value)` or `onError(error)`,
   * whichever comes first of the operation settling and the scope aborting (then
   * `onError(reason)`). The scope is released before either callback runs. A value the
   * operation delivers after the scope aborted goes to `onLate`, to be released.
   */
  run<T, U>(
    fn: Attempt<T>,
    onValue: (value: T) => U,
    onError: (error: unknown, scope: AttemptScope) => U,
    onLate?: (value: T) => void,
  ): Promise<U> {
    return new Promise<U>((resolve, reject) => {
      const settle = (ok: boolean, result: unknown): void => {
        if (this.#settled) {
          if (ok) onLate?.(result as T);
          return;
        }
        this.#settled = true;
        this.release();
        try {
          resolve(ok ? onValue(result as T) : onError(result, this));
        } catch (error) {
          reject(error);
        }
      };
      this.#settle = settle;
      if (this.#aborted) return settle(false, this.#reason);
      let pending: T | PromiseLike<T>;
      try {
        pending = fn(this);
      } catch (error) {
        return settle(false, error);
      }
      if (typeof (pending as { then?: unknown } | null)?.then !== 'function') return settle(true, pending);
      // Always handled, so a rejection after the race is lost is never unhandled.
      (pending as PromiseLike<T>).then(
        (value) => settle(true, value),
        (error: unknown) => settle(false, error),
      );
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
