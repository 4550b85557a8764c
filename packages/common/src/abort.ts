import { BallastError } from './errors.ts';
import { MAX_TIMER_MS } from './validate.ts';

/** A signal derived from others, with the means to release what it holds. */
export interface LinkedSignal extends Disposable {
  readonly signal: AbortSignal;
  /** Aborts the linked signal with `reason` (and nothing upstream). */
  abort(reason?: unknown): void;
  /** Removes listeners from the parent signals and clears the timeout. Idempotent. */
  dispose(): void;
}

/** Thrown (as `signal.reason`) when a Ballast timeout fires. */
export class TimeoutError extends BallastError {
  readonly timeoutMs: number;
  constructor(timeoutMs: number, message = `timed out after ${timeoutMs} ms`) {
    super('ERR_BALLAST_TIMEOUT', message);
    this.timeoutMs = timeoutMs;
  }
}

/**
 * Creates a signal that aborts when any of `parents` aborts or after `timeoutMs`,
 * whichever comes first, and that can be aborted on its own without touching the
 * parents. Unlike `AbortSignal.any` plus `AbortSignal.timeout`, everything it
 * registers is released by `dispose()`, and the timer follows fake timers in tests.
 *
 * The timeout aborts with a {@link TimeoutError}; a parent aborts with its own reason.
 */
export function linkSignal(parents: ReadonlyArray<AbortSignal | undefined>, timeoutMs?: number): LinkedSignal {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const listeners: Array<[AbortSignal, () => void]> = [];
  const dispose = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    for (const [parent, listener] of listeners) parent.removeEventListener('abort', listener);
    listeners.length = 0;
  };
  const abort = (reason?: unknown): void => {
    dispose();
    if (!controller.signal.aborted) controller.abort(reason);
  };
  for (const parent of parents) {
    if (!parent) continue;
    if (parent.aborted) {
      abort(parent.reason);
      break;
    }
    const listener = (): void => abort(parent.reason);
    parent.addEventListener('abort', listener, { once: true });
    listeners.push([parent, listener]);
  }
  if (!controller.signal.aborted && timeoutMs !== undefined && Number.isFinite(timeoutMs)) {
    timer = setTimeout(() => abort(new TimeoutError(timeoutMs)), Math.min(Math.max(0, timeoutMs), MAX_TIMER_MS));
  }
  return { signal: controller.signal, abort, dispose, [Symbol.dispose]: dispose };
}

/**
 * Resolves after `ms`, or rejects with `signal.reason` as soon as `signal` aborts.
 * Leaves no timer or listener behind on either path. Delays beyond the timer limit
 * are clamped to it rather than firing at once.
 */
export function sleep(ms: number, signal?: AbortSignal, options: { unref?: boolean } = {}): Promise<void> {
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.min(Math.max(0, ms), MAX_TIMER_MS),
    );
    if (options.unref) timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The reason an aborted signal carries, made into an Error when it is not one. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(reason === undefined ? 'This operation was aborted' : String(reason), 'AbortError');
}
