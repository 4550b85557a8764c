/** A listener for event `K` of an event map `E`. */
export type Listener<E, K extends keyof E> = (payload: E[K]) => void;

/** Returned by `on()`: call it to stop listening. Idempotent. */
export type Unsubscribe = () => void;

/** Receives the error a listener threw, and the event it was listening to. */
export type ListenerErrorHandler = (error: unknown, event: PropertyKey) => void;

/** Options of an {@link Emitter}. */
export interface EmitterOptions {
  /**
   * Called with the error when a listener throws. It must not throw itself (if it does,
   * that error is reported as a process warning too).
   * @default reportListenerError: a process warning named `BallastListenerError` (code `BALLAST_LISTENER_ERROR`)
   */
  onListenerError?: ListenerErrorHandler;
}

/**
 * The default {@link ListenerErrorHandler}: reports the error as a Node.js process
 * warning (printed on stderr, and delivered to `process.on('warning')` listeners, where an
 * application can route it to its logger), so a listener bug is seen without crashing
 * the process. Outside Node it goes to `console.error`.
 */
export function reportListenerError(error: unknown, event: PropertyKey): void {
  const warning = new Error(`a listener of the "${String(event)}" event threw: ${error instanceof Error ? error.message : String(error)}`, {
    cause: error,
  });
  warning.name = 'BallastListenerError';
  (warning as Error & { code?: string }).code = 'BALLAST_LISTENER_ERROR';
  const proc = (globalThis as { process?: { emitWarning?: (warning: Error) => void } }).process;
  if (typeof proc?.emitWarning === 'function') proc.emitWarning(warning);
  else console.error(warning);
}

/**
 * A small typed event emitter. Event names and payload types come from one map,
 * `subscribe` returns its own unsubscribe function, and emitting with no listener
 * costs one property read, so hot paths can emit freely.
 *
 * A listener that throws does not stop the others nor the caller, and never crashes the
 * process: the error goes to `onListenerError` (by default {@link reportListenerError}, a
 * process warning), so the state machine that emitted the event carries on unharmed.
 *
 * @example
 * ```ts
 * const events = new Emitter<{ open: { key: string } }>();
 * const off = events.on('open', ({ key }) => console.log(key));
 * events.emit('open', { key: 'a' });
 * off();
 * ```
 */
export class Emitter<E extends object> {
  #listeners: { [K in keyof E]?: Listener<E, K>[] } = {};
  /** Listeners of every event: while 0, {@link has} answers without a lookup. */
  #count = 0;
  readonly #onListenerError: ListenerErrorHandler;

  constructor(options: EmitterOptions = {}) {
    this.#onListenerError = options.onListenerError ?? reportListenerError;
  }

  /** Subscribes to `event`; returns a function that unsubscribes. */
  on<K extends keyof E>(event: K, listener: Listener<E, K>): Unsubscribe {
    const list = this.#listeners[event];
    // Copy on write, so emit() can iterate without copying.
    this.#listeners[event] = list ? [...list, listener] : [listener];
    this.#count++;
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      const current = this.#listeners[event];
      if (!current) return;
      const next = current.filter((l) => l !== listener);
      this.#count -= current.length - next.length;
      if (next.length === 0) delete this.#listeners[event];
      else this.#listeners[event] = next;
    };
  }

  /** Subscribes to the next `event` only. */
  once<K extends keyof E>(event: K, listener: Listener<E, K>): Unsubscribe {
    const off = this.on(event, (payload) => {
      off();
      listener(payload);
    });
    return off;
  }

  /** True when `event` has at least one listener; lets callers skip building a payload. */
  has<K extends keyof E>(event: K): boolean {
    return this.#count !== 0 && this.#listeners[event] !== undefined;
  }

  /** Calls every listener of `event` with `payload`. */
  emit<K extends keyof E>(event: K, payload: E[K]): void {
    const list = this.#listeners[event];
    if (!list) return;
    for (const listener of list) {
      try {
        listener(payload);
      } catch (error) {
        this.#report(error, event);
      }
    }
  }

  /** The number of listeners, for leak checks. */
  listenerCount(event?: keyof E): number {
    if (event !== undefined) return this.#listeners[event]?.length ?? 0;
    let n = 0;
    for (const key in this.#listeners) n += this.#listeners[key]?.length ?? 0;
    return n;
  }

  /** Removes every listener. */
  clear(): void {
    this.#listeners = {};
    this.#count = 0;
  }

  #report(error: unknown, event: PropertyKey): void {
    try {
      this.#onListenerError(error, event);
    } catch (handlerError) {
      reportListenerError(handlerError, event);
    }
  }
}
