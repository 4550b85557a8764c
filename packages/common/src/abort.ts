import { BallastError, InvalidOptionError, isBallastError } from './errors.ts';
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
  declare readonly code: 'ERR_BALLAST_TIMEOUT';
  /** The time limit that passed, ms. */
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
 * Resolves after `ms` milliseconds, or rejects with `signal.reason` as soon as `signal`
 * aborts. Leaves no timer or listener behind on either path.
 *
 * Delays longer than one timer can hold (2^31 - 1 ms, about 24.8 days) are waited in
 * full, as a chain of timers. A negative delay waits 0 ms; a delay that is not a finite
 * number (`NaN`, `Infinity`, a string) is refused: the promise rejects with an
 * `InvalidOptionError` naming `ms`.
 *
 * @param options.unref lets the process exit while waiting. @default false
 */
export function sleep(ms: number, signal?: AbortSignal, options: { unref?: boolean } = {}): Promise<void> {
  if (typeof ms !== 'number' || !Number.isFinite(ms))
    return Promise.reject(new InvalidOptionError('ms', 'a finite number of milliseconds', ms));
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise<void>((resolve, reject) => {
    let left = Math.max(0, ms);
    let timer: ReturnType<typeof setTimeout>;
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    // One timer holds at most MAX_TIMER_MS: a longer delay is waited as a chain of them.
    const arm = (): void => {
      const wait = Math.min(left, MAX_TIMER_MS);
      left -= wait;
      timer = setTimeout(step, wait);
      if (options.unref) timer.unref?.();
    };
    const step = (): void => {
      if (left <= 0) {
        signal?.removeEventListener('abort', onAbort);
        resolve();
        return;
      }
      arm();
    };
    arm();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** True for a {@link TimeoutError} from any copy of Ballast. */
export function isTimeoutError(value: unknown): value is TimeoutError {
  return isBallastError(value) && value.code === 'ERR_BALLAST_TIMEOUT';
}

/** The reason an aborted signal carries, made into an Error when it is not one. */
export function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException(reason === undefined ? 'This operation was aborted' : String(reason), 'AbortError');
}
