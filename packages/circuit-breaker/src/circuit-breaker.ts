import {
  durationMs,
  Emitter,
  func,
  Histogram,
  InvalidOptionError,
  type Listener,
  MAX_TIMER_MS,
  TimeoutError,
  type Unsubscribe,
  withoutStack,
} from '@ballast/common';
import { BreakerDisposedError, BrokenCircuitError, isBreakerDisposedError } from './errors.ts';
import { InFlight, type InFlightEntry } from './in-flight.ts';
import { Opossum } from './opossum.ts';
import type { OpossumBreaker } from './opossum-types.ts';
import { type Bucket, countOnlyWindow } from './opossum-window.ts';
import { type CircuitBreakerOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import type { CallOutcome, CircuitBreakerEvents, CircuitBreakerSnapshot, CircuitBreakerStats, CircuitState, OpenReason } from './state.ts';

/** Per-call options of {@link CircuitBreaker.execute}. */
export interface ExecuteOptions<T = unknown> {
  /** Cancels the call: its own signal aborts too. A cancelled call does not count against the circuit. */
  signal?: AbortSignal;
  /** Judges this call's result, instead of the breaker's `isFailure`. */
  isFailure?: (result: T) => boolean;
  /**
   * With opossum's `cache` or `coalesce` on: the key this call's result is cached and
   * shared under. An `execute()` call without one is neither cached nor coalesced
   * (`fire(...args)` calls are keyed by `cacheGetKey(...args)`, as in opossum). A call
   * coalesced into one already running shares its signal: its own `signal` does not cancel it.
   * @default none
   */
  cacheKey?: string;
}

/** One call on its way through the breaker; also the single argument opossum's action receives. */
interface Call {
  invoke: (signal: AbortSignal) => unknown;
  /** The arguments of `fire(...args)`; undefined for `execute`. Given to `cacheGetKey` and the fallback. */
  args: unknown[] | undefined;
  /** Key under opossum's cache and coalescing, computed only when either is on. */
  cacheKey: unknown;
  signal: AbortSignal | undefined;
  isFailure: ((result: never) => boolean) | undefined;
  /** Set before settling: tells opossum's errorFilter not to count this error. */
  ignored: boolean;
  /** The half-open period this trial belongs to, or -1 for a call through opossum. */
  generation: number;
}

/** Carries a result judged a failure through opossum (which only counts rejections) back to the caller. */
class ResultFailure {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

/** One running call: what {@link InFlight} tracks. */
class Attempt implements InFlightEntry {
  readonly call: Call;
  readonly start: number;
  readonly deadline: number;
  readonly resolve: (value: unknown) => void;
  readonly reject: (reason: unknown) => void;
  readonly controller: AbortController = new AbortController();
  onCallerAbort: (() => void) | undefined;
  /** The bucket of opossum's window that counted this call's `fire`, for a call through opossum. */
  bucket: Bucket | undefined;
  settled = false;
  prev: InFlightEntry | undefined;
  next: InFlightEntry | undefined;
  constructor(call: Call, start: number, deadline: number, resolve: (value: unknown) => void, reject: (reason: unknown) => void) {
    this.call = call;
    this.start = start;
    this.deadline = deadline;
    this.resolve = resolve;
    this.reject = reject;
  }
}

/** The cache key of a call that must be neither cached nor coalesced. */
const NO_CACHE_KEY: unique symbol = Symbol('not cached');

interface KeyedStore {
  get(key: unknown): unknown;
  set(key: unknown, value: unknown, expiresAt: number): void;
  flush(): void;
  delete?(key: unknown): void;
}

/**
 * Puts a view in front of one of opossum's caches that ignores calls without a key. A
 * new object, so that a `cacheTransport` shared by several breakers is left as it is.
 */
function skipUnkeyed(options: Record<string, unknown>, name: 'cacheTransport' | 'coalesceCache'): void {
  const store = options[name] as KeyedStore | undefined;
  if (store === undefined) return;
  const view: KeyedStore = {
    get: (key) => (key === NO_CACHE_KEY ? undefined : store.get(key)),
    set: (key, value, expiresAt) => {
      if (key !== NO_CACHE_KEY) store.set(key, value, expiresAt);
    },
    flush: () => store.flush(),
    delete: (key) => {
      if (key !== NO_CACHE_KEY) store.delete?.(key);
    },
  };
  options[name] = view;
}

/** How an attempt settled. */
type Settled = typeof RESOLVED | typeof REJECTED | typeof TIMED_OUT | typeof CANCELLED;
const RESOLVED = 0;
const REJECTED = 1;
const TIMED_OUT = 2;
const CANCELLED = 3;

function unwrap(error: unknown): unknown {
  if (error instanceof ResultFailure) return error.value;
  throw error;
}

/**
 * A circuit breaker on opossum. opossum keeps the rolling window and decides when a
 * closed circuit opens (`errorThresholdPercentage`, `volumeThreshold`, `allowWarmUp`),
 * and still provides `capacity`, its cache, coalescing and `healthCheck` (via
 * `breaker.opossum`). Ballast adds a per-call AbortSignal and timeout, `fallback`, outcome
 * classification (result-based failures, slow calls, caller errors), the open period
 * and a half-open phase with several trial calls, cheap rejections carrying
 * `retryAfterMs`, typed events, `stats()`, and `toJSON()`/`initialState`.
 *
 * Build one breaker per protected dependency and keep it (see `BreakerRegistry`):
 * a breaker built per request never sees enough calls to open.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ name: 'images', timeout: 2_000, isFailure: (r: Response) => r.status >= 500 });
 * const res = await breaker.execute((signal) => fetch(url, { signal }));
 * ```
 * @throws {InvalidOptionError} when an option is invalid.
 */
export class CircuitBreaker<R = unknown, A extends unknown[] = unknown[]> implements Disposable {
  /** Name used in events, errors, stats and metrics. */
  readonly name: string;
  /** The opossum breaker underneath, for its own API and events. */
  readonly opossum: OpossumBreaker;
  readonly #options: ResolvedOptions<R>;
  readonly #action: ((...args: A) => R | PromiseLike<R>) | undefined;
  readonly #events = new Emitter<CircuitBreakerEvents>();
  readonly #latency = new Histogram();
  readonly #counts: Record<CallOutcome, number> = {
    success: 0,
    error: 0,
    result: 0,
    slow: 0,
    timeout: 0,
    ignored: 0,
    rejected: 0,
  };
  #state: CircuitState = 'closed';
  #disposed = false;
  /** Set while Ballast itself moves opossum, so opossum's events are not taken for outside moves. */
  #syncing = false;
  #openedAt = 0;
  #openedAtWall = 0;
  #openForMs = 0;
  #halfOpenEndsAt = 0;
  #generation = 0;
  #trialsStarted = 0;
  #trialsSucceeded = 0;
  #trialsFailed = 0;
  readonly #inFlight: InFlight<Attempt>;
  readonly #timeoutMs: number;
  #resetTimer: ReturnType<typeof setTimeout> | undefined;
  #halfOpenTimer: ReturnType<typeof setTimeout> | undefined;
  /** `fire` arguments to cache key, when opossum's cache or coalescing is on. */
  readonly #cacheKeyOf: ((args: unknown[]) => unknown) | undefined;
  #fallback: ((...argsAndError: never[]) => unknown) | undefined;
  readonly #healthChecks: Array<ReturnType<typeof setInterval>> = [];
  /** opossum's window buckets, newest first, when Ballast counts them (percentiles off). */
  readonly #window: Bucket[] | undefined;

  /**
   * @param action the function `fire(...args)` calls (optional: `execute(fn)` takes the function per call).
   * @param options see {@link CircuitBreakerOptions}.
   */
  constructor(options?: CircuitBreakerOptions<R>);
  constructor(action: ((...args: A) => R | PromiseLike<R>) | undefined, options?: CircuitBreakerOptions<R>);
  constructor(
    actionOrOptions?: ((...args: A) => R | PromiseLike<R>) | CircuitBreakerOptions<R>,
    maybeOptions: CircuitBreakerOptions<R> = {},
  ) {
    const action = typeof actionOrOptions === 'function' ? actionOrOptions : undefined;
    const options = typeof actionOrOptions === 'function' || actionOrOptions === undefined ? maybeOptions : actionOrOptions;
    this.#options = resolveOptions(options, action?.name);
    this.#action = action;
    this.name = this.#options.name;
    this.#timeoutMs = this.#options.timeoutMs ?? Number.POSITIVE_INFINITY;
    this.#inFlight = new InFlight<Attempt>(this.#options.clock, (attempt) =>
      this.#settle(attempt, TIMED_OUT, new TimeoutError(this.#timeoutMs)),
    );
    const run = (call: Call): Promise<unknown> => this.#attempt(call);
    const opossumOptions = this.#options.opossum;
    const keyed = opossumOptions.cache === true || opossumOptions.coalesce === true;
    const userKey = opossumOptions.cacheGetKey as ((...args: unknown[]) => unknown) | undefined;
    this.#cacheKeyOf = keyed ? (args) => (userKey === undefined ? JSON.stringify(args) : userKey(...args)) : undefined;
    this.opossum = new Opossum(run as (...args: never[]) => unknown, {
      ...opossumOptions,
      name: this.name,
      // Ballast times each call out on its own signal and runs the open period itself.
      timeout: false,
      resetTimeout: MAX_TIMER_MS,
      errorFilter: (_error: unknown, call: Call) => call.ignored,
      // opossum would key its caches by the Ballast call object, the same for every call.
      cacheGetKey: (call: Call) => call.cacheKey,
    });
    if (keyed) {
      skipUnkeyed(this.opossum.options, 'cacheTransport');
      skipUnkeyed(this.opossum.options, 'coalesceCache');
    }
    // opossum would call a fallback with the Ballast call object, and never while Ballast holds the circuit open.
    this.opossum.fallback = (fn) => {
      this.fallback(fn);
      return this.opossum;
    };
    // opossum 10 keeps no handle on its health-check interval, so shutdown() cannot stop it.
    this.opossum.healthCheck = (fn, intervalMs) => this.healthCheck(fn, intervalMs);
    this.#window = countOnlyWindow(this.opossum, this.#options.opossum.rollingPercentilesEnabled === true);
    this.opossum.on('open', () => {
      if (!this.#syncing && this.#state === 'closed') this.#toOpen('threshold', this.#options.resetTimeoutMs);
    });
    this.opossum.on('close', () => {
      if (!this.#syncing && this.#state !== 'closed') this.#toClosed();
    });
    this.#restore(this.#options.initialState);
  }

  /** Current state of the circuit. */
  get state(): CircuitState {
    return this.#state;
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** True after `close()`. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Runs `fn` through the breaker. `fn` receives a signal of its own, aborted when this
   * call times out or the caller's `signal` aborts, and never by another call.
   *
   * @returns what `fn` returns, also when `isFailure` judged it a failure.
   * @throws {BrokenCircuitError} (rejects) when the circuit is open or half-open and full.
   * @throws {TimeoutError} (rejects) when the call exceeds `timeout`.
   * @throws {BreakerDisposedError} (rejects) after `close()`.
   */
  execute<T extends R>(fn: (signal: AbortSignal) => T | PromiseLike<T>, options?: ExecuteOptions<T>): Promise<T> {
    const signal = options?.signal;
    const isFailure = options?.isFailure;
    // A programming error must not count against the dependency.
    if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('fn', 'a function', fn));
    // By shape, not instanceof: signals of other realms and polyfills are accepted.
    if (signal !== undefined && typeof (signal as Partial<AbortSignal> | null)?.addEventListener !== 'function') {
      return Promise.reject(new InvalidOptionError('signal', 'an AbortSignal', signal));
    }
    if (isFailure !== undefined && typeof isFailure !== 'function') {
      return Promise.reject(new InvalidOptionError('isFailure', 'a function', isFailure));
    }
    return this.#run({
      invoke: fn,
      args: undefined,
      cacheKey: this.#cacheKeyOf === undefined ? undefined : (options?.cacheKey ?? NO_CACHE_KEY),
      signal,
      isFailure: isFailure as Call['isFailure'],
      ignored: false,
      generation: -1,
    }) as Promise<T>;
  }

  /**
   * opossum's entry point: calls the constructor's `action` with `args`. The action
   * gets no signal (a timeout still rejects and counts); use `execute` for abortable work.
   */
  fire(...args: A): Promise<R> {
    const action = this.#action;
    if (action === undefined) {
      return Promise.reject(new InvalidOptionError('action', 'a function given to the constructor to use fire()', undefined));
    }
    return this.#run({
      invoke: () => action(...args),
      args,
      cacheKey: this.#cacheKeyOf?.(args),
      signal: undefined,
      isFailure: undefined,
      ignored: false,
      generation: -1,
    }) as Promise<R>;
  }

  /**
   * Sets the function that answers instead when a call fails or is refused, as
   * opossum's `fallback()` does (`breaker.opossum.fallback(fn)` sets this one too). It
   * receives the arguments of `fire(...args)` (none for `execute`) followed by the
   * error: a counted failure, a `TimeoutError`, a `BrokenCircuitError` while open or
   * half-open and full, or opossum's `ESEMLOCKED`. It is not called for results judged
   * failures (they are returned), caller errors (`errorFilter`), cancelled calls, or
   * calls on a closed breaker. Pass `undefined` to remove it.
   *
   * @example
   * ```ts
   * breaker.fallback((error) => cachedCopy);
   * ```
   */
  fallback(fn: ((...argsAndError: never[]) => unknown) | undefined): this {
    this.#fallback = fn === undefined ? undefined : func<(...argsAndError: never[]) => unknown>('fallback', fn);
    return this;
  }

  /**
   * Runs `check` now and every `intervalMs`, as opossum's `healthCheck()` does
   * (`breaker.opossum.healthCheck` runs this one): when it rejects, a closed or
   * half-open circuit opens (reason `healthCheck`) and opossum's `healthCheckFailed`
   * event is emitted. The interval is unref'd and `close()` stops it.
   *
   * @param intervalMs time between checks, in ms. @default 5000
   * @throws {InvalidOptionError} when `check` is not a function or `intervalMs` is not a valid duration.
   */
  healthCheck(check: () => PromiseLike<unknown>, intervalMs = 5_000): void {
    func('check', check);
    const every = durationMs('intervalMs', intervalMs, { min: 1 });
    if (this.#disposed) return;
    const run = (): void => {
      let probe: PromiseLike<unknown>;
      try {
        probe = check();
      } catch (error) {
        probe = Promise.reject(error);
      }
      Promise.resolve(probe).then(undefined, (error: unknown) => {
        if (this.#disposed) return;
        this.opossum.emit('healthCheckFailed', error);
        if (this.#state !== 'open') this.#toOpen('healthCheck', this.#options.resetTimeoutMs);
      });
    };
    const timer = setInterval(run, every);
    timer.unref?.();
    this.#healthChecks.push(timer);
    run();
  }

  /** Opens the circuit now, for `resetTimeout` (e.g. from an operator or an outside health signal). */
  trip(): void {
    if (!this.#disposed) this.#toOpen('manual', this.#options.resetTimeoutMs);
  }

  /** Closes the circuit now and empties opossum's window. */
  reset(): void {
    if (!this.#disposed && this.#state !== 'closed') this.#toClosed();
  }

  /** Subscribes to a typed event; returns the unsubscribe function. */
  on<K extends keyof CircuitBreakerEvents>(event: K, listener: Listener<CircuitBreakerEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** Subscribes to the next occurrence of an event. */
  once<K extends keyof CircuitBreakerEvents>(event: K, listener: Listener<CircuitBreakerEvents, K>): Unsubscribe {
    return this.#events.once(event, listener);
  }

  /** Milliseconds until a trial call is admitted: 0 when closed or half-open with room. */
  retryAfterMs(): number {
    const now = this.#options.clock.now();
    switch (this.#state) {
      case 'closed':
        return 0;
      case 'open':
        return Math.max(0, this.#openedAt + this.#openForMs - now);
      case 'halfOpen': {
        if (this.#trialsStarted < this.#options.halfOpenMaxCalls) return 0;
        const untilExpiry = Math.max(0, this.#halfOpenEndsAt - now);
        return Math.min(untilExpiry, this.#options.timeoutMs ?? untilExpiry);
      }
    }
  }

  /** A snapshot of state, counters and latency percentiles. */
  stats(): CircuitBreakerStats {
    const w = this.opossum.stats;
    return {
      name: this.name,
      state: this.#state,
      retryAfterMs: this.retryAfterMs(),
      inFlight: this.#inFlight.size,
      calls: { ...this.#counts },
      trials: { started: this.#trialsStarted, succeeded: this.#trialsSucceeded, failed: this.#trialsFailed },
      latencyMs: this.#latency.summary(),
      window: {
        fires: w.fires,
        successes: w.successes,
        failures: w.failures,
        rejects: w.rejects,
        timeouts: w.timeouts,
        semaphoreRejections: w.semaphoreRejections,
      },
    };
  }

  /** The state to persist across a restart; give it back as `initialState`. */
  toJSON(): CircuitBreakerSnapshot {
    return this.#state === 'open'
      ? { name: this.name, state: 'open', openedAt: this.#openedAtWall }
      : { name: this.name, state: this.#state };
  }

  /**
   * Releases every timer and listener and shuts opossum down. Calls still in flight
   * have their signal aborted and reject with {@link BreakerDisposedError}, as do later
   * calls. Idempotent.
   */
  close(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#clearTimers();
    for (const timer of this.#healthChecks.splice(0)) clearInterval(timer);
    this.#inFlight.stop();
    for (const attempt of this.#inFlight.entries()) this.#settle(attempt, CANCELLED, new BreakerDisposedError(this.name));
    this.opossum.shutdown();
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #run(call: Call): Promise<unknown> {
    if (this.#disposed) return Promise.reject(new BreakerDisposedError(this.name));
    const settled = this.#admit(call);
    return this.#fallback === undefined ? settled : settled.then(undefined, (error: unknown) => this.#fallBack(call, error));
  }

  #admit(call: Call): Promise<unknown> {
    switch (this.#state) {
      case 'closed':
        return this.opossum.fire(call).then(undefined, unwrap);
      case 'open':
        return this.#reject('open');
      case 'halfOpen':
        if (this.#trialsStarted >= this.#options.halfOpenMaxCalls) return this.#reject('halfOpen');
        this.#trialsStarted++;
        call.generation = this.#generation;
        return this.#attempt(call).then(undefined, unwrap);
    }
  }

  #fallBack(call: Call, error: unknown): unknown {
    const fallback = this.#fallback as ((...argsAndError: unknown[]) => unknown) | undefined;
    if (fallback === undefined || call.ignored || isBreakerDisposedError(error)) throw error;
    const result = fallback(...(call.args ?? []), error);
    this.opossum.emit('fallback', result, error);
    return result;
  }

  #reject(state: 'open' | 'halfOpen'): Promise<never> {
    const retryAfterMs = this.retryAfterMs();
    this.#counts.rejected++;
    const error = withoutStack(() => new BrokenCircuitError(this.name, state, retryAfterMs));
    if (this.#events.has('reject')) this.#events.emit('reject', { name: this.name, state, retryAfterMs });
    // opossum counts it in its window, as if it had refused the call itself.
    this.opossum.emit('reject', error);
    return Promise.reject(error);
  }

  /**
   * Runs one call with a signal of its own and classifies how it ended. The hot path:
   * no listener on the call's own signal, one on the caller's only when there is one,
   * and no timer of its own (see {@link InFlight}).
   */
  #attempt(call: Call): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const start = this.#options.clock.now();
      const attempt = new Attempt(call, start, start + this.#timeoutMs, resolve, reject);
      if (call.generation === -1) attempt.bucket = this.#window?.[0];
      const callerSignal = call.signal;
      if (callerSignal !== undefined) {
        if (callerSignal.aborted) {
          this.#inFlight.add(attempt);
          this.#settle(attempt, CANCELLED, callerSignal.reason);
          return;
        }
        attempt.onCallerAbort = () => this.#settle(attempt, CANCELLED, callerSignal.reason);
        callerSignal.addEventListener('abort', attempt.onCallerAbort, { once: true });
      }
      this.#inFlight.add(attempt);
      let result: unknown;
      try {
        result = call.invoke(attempt.controller.signal);
      } catch (error) {
        this.#settle(attempt, REJECTED, error);
        return;
      }
      if (result !== null && typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
        (result as PromiseLike<unknown>).then(
          (value) => this.#settle(attempt, RESOLVED, value),
          (error: unknown) => this.#settle(attempt, REJECTED, error),
        );
      } else {
        this.#settle(attempt, RESOLVED, result);
      }
    });
  }

  #settle(attempt: Attempt, how: Settled, value: unknown): void {
    if (attempt.settled) return;
    attempt.settled = true;
    if (how !== TIMED_OUT) this.#inFlight.remove(attempt);
    const { call } = attempt;
    if (attempt.onCallerAbort !== undefined) call.signal?.removeEventListener('abort', attempt.onCallerAbort);
    const durationMs = this.#options.clock.now() - attempt.start;
    if (how === RESOLVED) {
      this.#classifyResult(call, value, durationMs, attempt.resolve, attempt.reject);
      return;
    }
    if (how === CANCELLED && attempt.bucket !== undefined) this.#uncount(attempt.bucket);
    attempt.reject(this.#classifyError(call, value, how, durationMs));
    // Abort after settling, so whatever the work does on abort cannot change the outcome.
    if (how === TIMED_OUT || how === CANCELLED) attempt.controller.abort(value);
  }

  #classifyResult(
    call: Call,
    value: unknown,
    durationMs: number,
    resolve: (value: unknown) => void,
    reject: (reason: unknown) => void,
  ): void {
    const isFailure = (call.isFailure ?? this.#options.isFailure) as ((result: unknown) => boolean) | undefined;
    let failed: boolean;
    try {
      failed = isFailure?.(value) === true;
    } catch (error) {
      this.#failed(call, 'error', durationMs, error, undefined);
      reject(error);
      return;
    }
    if (failed || durationMs >= this.#options.slowCallDurationMs) {
      this.#failed(call, failed ? 'result' : 'slow', durationMs, undefined, value);
      reject(new ResultFailure(value));
      return;
    }
    this.#counts.success++;
    this.#latency.record(durationMs);
    // The outcome's event first, then the transition it causes (as on the path through opossum).
    if (this.#events.has('success')) this.#events.emit('success', { name: this.name, durationMs, trial: call.generation >= 0 });
    if (call.generation >= 0) this.#trialEnded(call, true);
    resolve(value);
  }

  #classifyError(call: Call, error: unknown, how: Settled, durationMs: number): unknown {
    if (how === CANCELLED) return this.#ignored(call, error, true);
    if (how === TIMED_OUT) {
      if (this.#events.has('timeout')) this.#events.emit('timeout', { name: this.name, timeoutMs: this.#options.timeoutMs as number });
      // opossum counts it in its window's `timeouts`, as if it had timed the call out itself.
      this.opossum.emit('timeout', error, durationMs, call.args ?? []);
      this.#failed(call, 'timeout', durationMs, error, undefined);
      return error;
    }
    let callerError: boolean;
    try {
      callerError = this.#options.errorFilter?.(error) === true;
    } catch (filterError) {
      this.#failed(call, 'error', durationMs, filterError, undefined);
      return filterError;
    }
    if (callerError) return this.#ignored(call, error, false);
    this.#failed(call, 'error', durationMs, error, undefined);
    return error;
  }

  /**
   * Takes a call the caller cancelled out of opossum's window: its `fire` from the bucket
   * that counted it, and ahead of time the success opossum is about to count for it (a
   * filtered error, in a microtask, before any bucket rotation). A dependency that
   * hangs until clients give up must not look healthier for each client that left.
   */
  #uncount(fired: Bucket): void {
    fired.fires--;
    // A disabled opossum counts fires only.
    if (this.opossum.enabled) ((this.#window as Bucket[])[0] as Bucket).successes--;
  }

  #ignored(call: Call, error: unknown, cancelled: boolean): unknown {
    call.ignored = true;
    this.#counts.ignored++;
    if (call.generation >= 0) {
      // A cancelled trial says nothing about the dependency: give its slot back.
      // A caller error (a 4xx) shows the dependency answering: a successful trial.
      if (cancelled) {
        if (call.generation === this.#generation && this.#state === 'halfOpen') this.#trialsStarted--;
      } else {
        this.#trialEnded(call, true);
      }
    }
    return error;
  }

  #failed(call: Call, outcome: 'error' | 'result' | 'slow' | 'timeout', durationMs: number, error: unknown, result: unknown): void {
    this.#counts[outcome]++;
    this.#latency.record(durationMs);
    if (this.#events.has('failure')) {
      this.#events.emit('failure', { name: this.name, outcome, durationMs, error, result, trial: call.generation >= 0 });
    }
    if (call.generation >= 0) this.#trialEnded(call, false);
  }

  #trialEnded(call: Call, succeeded: boolean): void {
    if (call.generation !== this.#generation || this.#state !== 'halfOpen') return;
    const { halfOpenMaxCalls, halfOpenSuccessThreshold } = this.#options;
    if (succeeded) {
      this.#trialsSucceeded++;
      if (this.#trialsSucceeded >= halfOpenSuccessThreshold) this.#toClosed();
    } else {
      this.#trialsFailed++;
      if (this.#trialsFailed > halfOpenMaxCalls - halfOpenSuccessThreshold) {
        this.#toOpen('trialFailure', this.#options.resetTimeoutMs);
      }
    }
  }

  #toOpen(reason: OpenReason, forMs: number): void {
    this.#enter('open');
    this.#openedAt = this.#options.clock.now();
    this.#openedAtWall = Date.now();
    this.#openForMs = forMs;
    if (!this.opossum.opened) this.#moveOpossum(() => this.opossum.open());
    this.#resetTimer = setTimeout(() => this.#toHalfOpen(), forMs);
    this.#resetTimer.unref?.();
    this.#events.emit('open', { name: this.name, reason, retryAfterMs: forMs });
  }

  #toHalfOpen(): void {
    this.#enter('halfOpen');
    const maxMs = this.#options.halfOpenMaxDurationMs;
    this.#halfOpenEndsAt = this.#options.clock.now() + maxMs;
    const generation = this.#generation;
    this.#halfOpenTimer = setTimeout(() => {
      if (this.#generation === generation) this.#toOpen('halfOpenExpired', this.#options.resetTimeoutMs);
    }, maxMs);
    this.#halfOpenTimer.unref?.();
    this.#events.emit('halfOpen', { name: this.name });
  }

  #toClosed(): void {
    this.#enter('closed');
    if (!this.opossum.closed) {
      this.#moveOpossum(() => this.opossum.close());
      // resilience4j semantics: a closed circuit starts from an empty window, so the
      // failures that opened it cannot reopen it on the next failure.
      const { status } = this.opossum;
      const buckets = this.#options.opossum.rollingCountBuckets as number;
      if (typeof status.rotateBucket === 'function') for (let i = 0; i < buckets; i++) status.rotateBucket();
    }
    this.#events.emit('close', { name: this.name });
  }

  #enter(state: CircuitState): void {
    this.#clearTimers();
    this.#state = state;
    this.#generation++;
    this.#trialsStarted = 0;
    this.#trialsSucceeded = 0;
    this.#trialsFailed = 0;
  }

  #moveOpossum(move: () => void): void {
    this.#syncing = true;
    try {
      move();
    } finally {
      this.#syncing = false;
    }
  }

  #clearTimers(): void {
    if (this.#resetTimer !== undefined) clearTimeout(this.#resetTimer);
    if (this.#halfOpenTimer !== undefined) clearTimeout(this.#halfOpenTimer);
    this.#resetTimer = undefined;
    this.#halfOpenTimer = undefined;
  }

  #restore(initial: CircuitBreakerSnapshot | undefined): void {
    if (initial === undefined || initial.state === 'closed') return;
    const resetMs = this.#options.resetTimeoutMs;
    if (initial.state === 'halfOpen') {
      this.#toHalfOpen();
      return;
    }
    const elapsed = initial.openedAt === undefined ? 0 : Math.max(0, Date.now() - initial.openedAt);
    if (elapsed >= resetMs) {
      this.#toHalfOpen();
      return;
    }
    this.#toOpen('restored', resetMs);
    // Count the open period from when it really began, before the restart.
    this.#openedAt -= elapsed;
    this.#openedAtWall -= elapsed;
    clearTimeout(this.#resetTimer);
    this.#resetTimer = setTimeout(() => this.#toHalfOpen(), resetMs - elapsed);
    this.#resetTimer.unref?.();
  }
}
