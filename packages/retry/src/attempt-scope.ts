import { type CallScope, type CallSink, type PolicyContext, runInside, type Stage, TimeoutError } from '@ballast/common';
import type { Expirable, ExpiryQueue } from './expiry.ts';
import type { Attempt } from './policy.ts';

/**
 * One attempt's lifetime. The operation receives `context`, a child of the call's scope
 * (its signal is created only when the operation reads it), and the attempt's promise is
 * settled directly when the attempt is aborted, so a timeout, a deadline, the caller's
 * abort or close() end the attempt even when the operation ignores its signal.
 */
export class AttemptScope implements Expirable, CallSink {
  readonly attempt: number;
  /** What the operation receives: `{ attempt, signal }`, joinable by inner policies. */
  readonly context: CallScope;
  /** Clock time of the timeout, when one is set. */
  expiresAt: number = Number.POSITIVE_INFINITY;
  /** True once the time limit fired and it was the call's deadline rather than `timeoutMs`. */
  deadlineExpired = false;
  expiryIndex = -1;
  #limitMs = 0;
  #byDeadline = false;
  #settled = false;
  #settle: ((ok: boolean, result: unknown) => void) | undefined;
  #queue: ExpiryQueue | undefined;

  constructor(attempt: number, parent: CallScope) {
    this.attempt = attempt;
    this.context = parent.child(attempt);
    this.context.onAbort = (reason) => {
      this.release();
      this.#settle?.(false, reason);
    };
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
   * Rejects the attempt with `reason` and aborts its context. Idempotent, and a no-op
   * once the attempt has settled: the signal of an attempt that delivered its value stays
   * live, since the value may still be streaming (a fetch response body).
   */
  abort(reason: unknown): void {
    if (this.#settled) return;
    this.context.abort(reason);
  }

  /**
   * Runs `fn` (with `inner`, the rest of a chain, before it) in this scope and settles
   * with `onValue(value)` or `onError(error)`,
   * whichever comes first of the operation settling and the scope aborting (then
   * `onError(reason)`). The scope is released before either callback runs. A value the
   * operation delivers after the scope aborted goes to `onLate`, to be released.
   */
  run<T, U>(
    fn: Attempt<T>,
    inner: Stage | undefined,
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
      const context = this.context;
      if (context.aborted) return settle(false, context.reason);
      runInside(fn as (context: PolicyContext) => unknown, inner, context, this);
    });
  }

  /** How the operation (or the rest of the chain) ended. */
  settle(ok: boolean, value: unknown): void {
    this.#settle?.(ok, value);
  }

  /** Drops the expiry and detaches the context from the call. Idempotent. */
  release(): void {
    if (this.#queue) {
      this.#queue.delete(this);
      this.#queue = undefined;
    }
    this.context.release();
  }
}
