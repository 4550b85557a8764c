/**
 * Settles with `value`, or rejects with `signal.reason` as soon as `signal` aborts,
 * so an operation that ignores its signal cannot hold a retry loop past a timeout.
 * The listener is removed on every path, and the operation's own rejection is
 * always handled (no unhandled rejection once the race is lost).
 */
export function raceSignal<T>(value: T | PromiseLike<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    if (isThenable(value)) value.then(undefined, noop);
    return Promise.reject(signal.reason);
  }
  if (!isThenable(value)) return Promise.resolve(value);
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    value.then(
      (result) => {
        signal.removeEventListener('abort', onAbort);
        resolve(result);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function noop(): void {}
