import {
  CallScope,
  type CallSink,
  type Clock,
  type DeadlineEntry,
  DeadlineList,
  declareJoinsScope,
  declareStaged,
  durationMs,
  Emitter,
  func,
  Histogram,
  InvalidOptionError,
  type Listener,
  MAX_TIMER_MS,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  refuse,
  runInside,
  type Stage,
  StageCall,
  TimeoutError,
  type Unsubscribe,
  withoutStack,
} from '@ballast/common';
import { BreakerDisposedError, BrokenCircuitError, isBreakerDisposedError } from './errors.ts';
import { Opossum } from './opossum.ts';
import type { OpossumBreaker } from './opossum-types.ts';
import { type Bucket, countOnlyWindow } from './opossum-window.ts';
import { type CircuitBreakerOptions, type ResolvedOptions, resolveOptions } from './options.ts';
import type {
  CallOutcome,
  Circuit,
  CircuitBreakerEvents,
  CircuitBreakerSnapshot,
  CircuitBreakerStats,
  CircuitState,
  HalfOpenCircuit,
  OpenReason,
} from './state.ts';

/** Per-call options of {@link CircuitBreaker.execute}. */
export interface BreakerExecuteOptions<T = unknown> extends PolicyExecuteOptions<T> {
  /** Cancels the call: its own signal aborts too. A cancelled call does not count against the circuit. */
  signal?: AbortSignal;
  /** Judges this call's result, instead of the breaker's `isFailure` (and of `classify`). */
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

/** @deprecated Renamed {@link BreakerExecuteOptions} (the retry policy has its own); this alias goes in the next major version. */
export type ExecuteOptions<T = unknown> = BreakerExecuteOptions<T>;

/** The cache key of a call that must be neither cached nor coalesced. */
const NO_CACHE_KEY: unique symbol = Symbol('not cached');

/** Carries a result judged a failure through opossum (which only counts rejections) back to the caller. */
class ResultFailure {
  readonly value: unknown;
  constructor(value: unknown) {
    this.value = value;
  }
}

/**
 * One call on its way through the breaker, from admission to its outcome: the scope its
 * work runs in (so the call and the context `fn` receives are one object), the single
 * argument opossum's action receives, and the entry that times it out.
 */
class Call extends StageCall implements DeadlineEntry {
  declare readonly breaker: CircuitBreaker<never, never[]>;
  /** The work: `fn` (with the rest of a chain, `inner`, between the breaker and it). */
  declare readonly fn: (context: PolicyContext) => unknown;
  declare readonly inner: Stage | undefined;
  /** The scope of an enclosing policy this call joined; undefined for a call of its own. */
  declare readonly joined: CallScope | undefined;
  /** What few calls have (see {@link CallExtra}), allocated only for them. */
  declare extra: CallExtra | undefined;
  /** {@link IGNORED}, {@link DIRECT}, {@link WITH_FALLBACK}, {@link SETTLED}, {@link TIMED}. */
  declare flags: number;
  /** The half-open period this trial belongs to; undefined for a call on a closed circuit. */
  declare trial: HalfOpenCircuit | undefined;
  /** The bucket of opossum's window that counted this call's `fire`. */
  declare bucket: Bucket | undefined;
  declare deadline: number;
  declare prev: DeadlineEntry | undefined;
  declare next: DeadlineEntry | undefined;
  constructor(
    breaker: CircuitBreaker<never, never[]>,
    fn: (context: PolicyContext) => unknown,
    inner: Stage | undefined,
    args: unknown[] | undefined,
    cacheKey: unknown,
    options: PolicyExecuteOptions<never> | undefined,
    isFailure: ((result: never) => boolean) | undefined,
  ) {
    const joined = options instanceof CallScope ? options : undefined;
    super(options, joined);
    this.breaker = breaker;
    this.fn = fn;
    this.inner = inner;
    this.joined = joined;
    this.extra =
      args === undefined && cacheKey === undefined && isFailure === undefined ? undefined : new CallExtra(args, cacheKey, isFailure);
    this.flags = 0;
    this.trial = undefined;
    this.bucket = undefined;
    this.deadline = Number.POSITIVE_INFINITY;
    this.prev = undefined;
    this.next = undefined;
  }

  /** The arguments of `fire(...args)`; undefined for `execute`. Given to `cacheGetKey` and the fallback. */
  get args(): unknown[] | undefined {
    return this.extra?.args;
  }

  /** Key under opossum's cache and coalescing, computed only when either is on. */
  get cacheKey(): unknown {
    return this.extra?.cacheKey;
  }

  /** This call's own `isFailure`. */
  get isFailure(): ((result: never) => boolean) | undefined {
    return this.extra?.isFailure;
  }

  /** The outcome handed to opossum after the fact, for a direct call that did not succeed. */
  get replay(): Promise<never> | undefined {
    return this.extra?.replay;
  }

  set replay(replay: Promise<never> | undefined) {
    this.extra ??= new CallExtra(undefined, undefined, undefined);
    this.extra.replay = replay;
  }

  /** Set before settling: tells opossum's errorFilter not to count this error. */
  get ignored(): boolean {
    return (this.flags & IGNORED) !== 0;
  }

  set ignored(on: boolean) {
    this.flags = on ? this.flags | IGNORED : this.flags & ~IGNORED;
  }

  /** True when the call bypassed opossum's `fire()` (the success path); see `CircuitBreaker.#run`. */
  get direct(): boolean {
    return (this.flags & DIRECT) !== 0;
  }

  set direct(on: boolean) {
    this.flags = on ? this.flags | DIRECT : this.flags & ~DIRECT;
  }

  /** A fallback was set when the call started. */
  get withFallback(): boolean {
    return (this.flags & WITH_FALLBACK) !== 0;
  }

  set withFallback(on: boolean) {
    this.flags = on ? this.flags | WITH_FALLBACK : this.flags & ~WITH_FALLBACK;
  }

  /** The call has settled. */
  get settled(): boolean {
    return (this.flags & SETTLED) !== 0;
  }

  set settled(on: boolean) {
    this.flags = on ? this.flags | SETTLED : this.flags & ~SETTLED;
  }

  /** How the work ended. */
  settle(ok: boolean, value: unknown): void {
    settleCall(this, ok ? RESOLVED : REJECTED, value);
  }

  /** The caller (or an enclosing policy) cancelled the call, or the breaker aborted its work. */
  protected override aborting(reason: unknown): void {
    settleCall(this, CANCELLED, reason);
  }
}

let settleCall: (call: Call, how: Settled, value: unknown) => void;

const IGNORED = 1;
const DIRECT = 2;
const WITH_FALLBACK = 4;
const SETTLED = 8;
/** The call read the clock when it started (see `CircuitBreaker.#attempt`): its duration is known. */
const TIMED = 16;

/** What a call through `fire()`, a keyed call, a call with its own `isFailure`, or a call that did not simply succeed carries. */
class CallExtra {
  readonly args: unknown[] | undefined;
  readonly cacheKey: unknown;
  readonly isFailure: ((result: never) => boolean) | undefined;
  replay: Promise<never> | undefined = undefined;
  /** While the call runs as opossum's action: the resolvers of the promise opossum waits on. */
  actionResolve: ((value: unknown) => void) | undefined = undefined;
  actionReject: ((reason: unknown) => void) | undefined = undefined;
  constructor(args: unknown[] | undefined, cacheKey: unknown, isFailure: ((result: never) => boolean) | undefined) {
    this.args = args;
    this.cacheKey = cacheKey;
    this.isFailure = isFailure;
  }
}

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

/** How a call settled. */
type Settled = typeof RESOLVED | typeof REJECTED | typeof TIMED_OUT | typeof CANCELLED;
const RESOLVED = 0;
const REJECTED = 1;
const TIMED_OUT = 2;
const CANCELLED = 3;

const CLOSED: Circuit = Object.freeze({ kind: 'closed' });

/**
 * A circuit breaker on opossum. opossum keeps the rolling window and decides when a
 * closed circuit opens (`errorThresholdPercentage`, `volumeThreshold`, `allowWarmUp`),
 * and still provides `capacity`, its cache, coalescing and `healthCheck` (via
 * `breaker.opossum`). Ballast adds a per-call AbortSignal and timeout, `fallback`, outcome
 * classification (result-based failures, slow calls, caller errors), the open period
 * and a half-open phase with several trial calls, cheap rejections carrying
 * `retryAfterMs`, typed events, `stats()`, and `toJSON()`/`initialState`.
 *
 * Implements the {@link Policy} contract: `execute(fn, { signal })` runs `fn({ signal, attempt })`.
 * Build one breaker per protected dependency and keep it (see `BreakerRegistry`):
 * a breaker built per request never sees enough calls to open.
 *
 * @example
 * ```ts
 * const breaker = new CircuitBreaker({ name: 'images', timeoutMs: 2_000, isFailure: (r: Response) => r.status >= 500 });
 * const res = await breaker.execute(({ signal }) => fetch(url, { signal }));
 * ```
 * @throws {InvalidOptionError} when an option is invalid.
 */
export class CircuitBreaker<R = unknown, A extends unknown[] = unknown[]> implements Policy<R>, Disposable {
  static {
    declareJoinsScope(CircuitBreaker);
    settleCall = (call, how, value) => (call.breaker as unknown as CircuitBreaker).#settle(call, how, value);
    declareStaged(CircuitBreaker, function (fn, options, sink, inner) {
      return this.#execute(fn, options, sink, inner);
    });
  }

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
  #circuit: Circuit = CLOSED;
  #disposed = false;
  /** Set while Ballast itself moves opossum, so opossum's events are not taken for outside moves. */
  #syncing = false;
  readonly #inFlight: DeadlineList<Call>;
  readonly #timeoutMs: number;
  /** The clock of the options, read at each end of a timed call. */
  readonly #clock: Clock;
  /** Keep the latency histogram (the option `recordLatency`). */
  readonly #recordLatency: boolean;
  /**
   * True when every call is timed (a clock reading at its start and at its end): for the
   * timeout, slow-call detection or the latency histogram. Otherwise only a call that
   * starts while someone listens to `success` or `failure` (whose events carry its
   * duration) is timed.
   */
  readonly #timed: boolean;
  /** True when every call's duration is needed: for slow-call detection or the latency histogram. */
  readonly #durations: boolean;
  /** `fire` arguments to cache key, when opossum's cache or coalescing is on. */
  readonly #cacheKeyOf: ((args: unknown[]) => unknown) | undefined;
  #fallback: ((...argsAndError: never[]) => unknown) | undefined;
  readonly #healthChecks: Array<ReturnType<typeof setInterval>> = [];
  /** opossum's window buckets, newest first, when Ballast counts them (percentiles off). */
  readonly #window: Bucket[] | undefined;
  /**
   * True while a call on a closed circuit may bypass opossum's `fire()` when it succeeds:
   * Ballast counts the window itself, and nothing (cache, coalescing, capacity, a listener
   * of opossum's own `fire` or `success` events) needs `fire()` to run.
   */
  #direct: boolean;
  /**
   * True after a call on the closed circuit did not succeed, until one does: while calls
   * fail, they go through opossum's `fire()` directly, so a run of failures is not handed to
   * opossum twice (run, then replayed).
   */
  #failing = false;

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
    this.#clock = this.#options.clock;
    this.#recordLatency = this.#options.recordLatency;
    this.#durations = this.#options.recordLatency || this.#options.slowCallDurationMs !== Number.POSITIVE_INFINITY;
    this.#timed = this.#durations || this.#timeoutMs !== Number.POSITIVE_INFINITY;
    this.#inFlight = new DeadlineList<Call>(this.#options.clock, (call) =>
      this.#settle(call, TIMED_OUT, new TimeoutError(this.#timeoutMs)),
    );
    const opossumOptions = this.#options.opossum;
    const keyed = opossumOptions.cache === true || opossumOptions.coalesce === true;
    const userKey = opossumOptions.cacheGetKey as ((...args: unknown[]) => unknown) | undefined;
    this.#cacheKeyOf = keyed ? (args) => (userKey === undefined ? JSON.stringify(args) : userKey(...args)) : undefined;
    // opossum's action: a call Ballast runs itself, or the replay of one that already ran.
    const run = (call: Call): Promise<unknown> => call.replay ?? this.#actionAttempt(call);
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
    const capacity = opossumOptions.capacity;
    const directCapable = this.#window !== undefined && !keyed && (capacity === undefined || capacity === Number.MAX_SAFE_INTEGER);
    const ownListeners = { fire: this.opossum.listenerCount('fire'), success: this.opossum.listenerCount('success') };
    const quiet = (): boolean =>
      this.opossum.listenerCount('fire') <= ownListeners.fire && this.opossum.listenerCount('success') <= ownListeners.success;
    this.#direct = directCapable;
    if (directCapable) {
      // Someone listening to opossum's own `fire` / `success` events gets every call through fire() again.
      this.opossum.on('newListener', (event: string | symbol) => {
        if (event === 'fire' || event === 'success') this.#direct = false;
      });
      this.opossum.on('removeListener', () => {
        this.#direct = quiet();
      });
    }
    this.opossum.on('open', () => {
      if (!this.#syncing && this.#circuit.kind === 'closed') this.#toOpen('threshold', this.#options.resetTimeoutMs);
    });
    this.opossum.on('close', () => {
      if (!this.#syncing && this.#circuit.kind !== 'closed') this.#toClosed();
    });
    this.#restore(this.#options.initialState);
  }

  /** Current state of the circuit. */
  get state(): CircuitState {
    return this.#circuit.kind;
  }

  /** Calls running now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** True after `dispose()`. */
  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Runs `fn` through the breaker. `fn` receives a context `{ signal, attempt }` of its
   * own: the signal aborts when this call times out or the caller's `signal` aborts, and
   * never because of another call. A context handed down by an enclosing policy (or
   * `wrap()`) can be passed as `options`: the call then joins it.
   *
   * @returns what `fn` returns, also when `isFailure` judged it a failure.
   * @throws {BrokenCircuitError} (rejects) when the circuit is open or half-open and full.
   * @throws {TimeoutError} (rejects) when the call exceeds `timeoutMs`.
   * @throws {BreakerDisposedError} (rejects) after `dispose()`.
   */
  execute<T extends R>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: BreakerExecuteOptions<T>): Promise<T> {
    return this.#execute(fn, options as BreakerExecuteOptions<never> | undefined, undefined, undefined) as Promise<T>;
  }

  /** One call of {@link execute}, or one call as a stage of a chain (see `StagedPolicy`). */
  #execute(
    fn: (context: PolicyContext) => unknown,
    options: BreakerExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined {
    // A programming error must not count against the dependency.
    if (typeof fn !== 'function') return refuse(sink, new InvalidOptionError('fn', 'a function', fn));
    let isFailure: Call['isFailure'];
    if (options !== undefined && !CallScope.isScope(options)) {
      isFailure = options.isFailure as Call['isFailure'];
      if (isFailure !== undefined && typeof isFailure !== 'function') {
        return refuse(sink, new InvalidOptionError('isFailure', 'a function', isFailure));
      }
      try {
        CallScope.check(options);
      } catch (error) {
        return refuse(sink, error);
      }
    }
    const cacheKey =
      this.#cacheKeyOf === undefined ? undefined : ((options as BreakerExecuteOptions | undefined)?.cacheKey ?? NO_CACHE_KEY);
    return this.#run(new Call(this as never, fn, inner, undefined, cacheKey, options, isFailure), sink);
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
    const call = new Call(this as never, () => action(...args), undefined, args, this.#cacheKeyOf?.(args), undefined, undefined);
    return this.#run(call, undefined) as Promise<R>;
  }

  /**
   * Sets the function that answers instead when a call fails or is refused, as
   * opossum's `fallback()` does (`breaker.opossum.fallback(fn)` sets this one too). It
   * receives the arguments of `fire(...args)` (none for `execute`) followed by the
   * error: a counted failure, a `TimeoutError`, a `BrokenCircuitError` while open or
   * half-open and full, or opossum's `ESEMLOCKED`. It is not called for results judged
   * failures (they are returned), caller errors (`errorFilter`), cancelled calls, or
   * calls on a disposed breaker. Pass `undefined` to remove it.
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
   * event is emitted. The interval is unref'd and `dispose()` stops it.
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
        if (this.#circuit.kind !== 'open') this.#toOpen('healthCheck', this.#options.resetTimeoutMs);
      });
    };
    const timer = setInterval(run, every);
    timer.unref?.();
    this.#healthChecks.push(timer);
    run();
  }

  /** Opens the circuit now, for `resetTimeoutMs` (e.g. from an operator or an outside health signal). */
  trip(): void {
    if (!this.#disposed) this.#toOpen('manual', this.#options.resetTimeoutMs);
  }

  /** Closes the circuit now and empties opossum's window. */
  reset(): void {
    if (!this.#disposed && this.#circuit.kind !== 'closed') this.#toClosed();
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
    const circuit = this.#circuit;
    switch (circuit.kind) {
      case 'closed':
        return 0;
      case 'open':
        return Math.max(0, circuit.openedAt + circuit.forMs - this.#options.clock.now());
      case 'halfOpen': {
        if (circuit.started < this.#options.halfOpenMaxCalls) return 0;
        const untilExpiry = Math.max(0, circuit.endsAt - this.#options.clock.now());
        return Math.min(untilExpiry, this.#options.timeoutMs ?? untilExpiry);
      }
    }
  }

  /** A snapshot of state, counters and latency percentiles. */
  stats(): CircuitBreakerStats {
    const w = this.opossum.stats;
    const circuit = this.#circuit;
    return {
      name: this.name,
      state: circuit.kind,
      retryAfterMs: this.retryAfterMs(),
      inFlight: this.#inFlight.size,
      calls: { ...this.#counts },
      trials:
        circuit.kind === 'halfOpen'
          ? { started: circuit.started, succeeded: circuit.succeeded, failed: circuit.failed }
          : { started: 0, succeeded: 0, failed: 0 },
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
    const circuit = this.#circuit;
    return circuit.kind === 'open'
      ? { name: this.name, state: 'open', openedAt: circuit.openedAtWall }
      : { name: this.name, state: circuit.kind };
  }

  /**
   * Releases every timer and listener and shuts opossum down. Calls still in flight
   * have their signal aborted and reject with {@link BreakerDisposedError}, as do later
   * calls. Idempotent. (Named so as not to be mistaken for closing the circuit: that is
   * {@link reset}.)
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#clearTimers();
    for (const timer of this.#healthChecks.splice(0)) clearInterval(timer);
    this.#inFlight.stop();
    for (const call of this.#inFlight.entries()) this.#settle(call, CANCELLED, new BreakerDisposedError(this.name));
    this.opossum.shutdown();
    this.#events.clear();
  }

  /**
   * Same as {@link dispose}.
   * @deprecated A method named like a circuit state that does not close the circuit: use
   * `dispose()` (or `using`). This alias goes in the next major version.
   */
  close(): void {
    this.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Starts `call` on the circuit's current state; reports to `sink`, or returns the promise of the call. */
  #run(call: Call, sink: CallSink | undefined): Promise<unknown> | undefined {
    if (this.#disposed) {
      call.release();
      return refuse(sink, new BreakerDisposedError(this.name));
    }
    call.withFallback = this.#fallback !== undefined;
    const circuit = this.#circuit;
    switch (circuit.kind) {
      case 'closed': {
        if (this.#direct && !this.#failing && this.opossum.enabled) {
          // The success path, without opossum's fire(): Ballast counts the call in opossum's
          // window itself. Any other outcome is then handed to opossum (see #replay), which
          // counts it and decides whether to open, exactly as if fire() had run the call.
          call.direct = true;
          const promise = call.attach(sink);
          this.#attempt(call);
          return promise;
        }
        // Through opossum's fire(): a success is the call's as is; anything else is delivered
        // (a result judged a failure handed back as the value it is, the fallback applied).
        // (The promise `execute` returns is the call's own, rejected by a plain call: continuing fire()'s
        // promise instead would reject it by a throw in a reaction, which costs more than the promise.)
        const promise = call.attach(sink);
        this.opossum
          .fire(call)
          .then(sink === undefined ? call.resolve : (value: unknown) => call.report(true, value), (error: unknown) =>
            this.#deliver(call, false, error),
          );
        return promise;
      }
      case 'open': {
        const promise = call.attach(sink);
        this.#deliver(call, false, this.#reject(call, 'open'));
        return promise;
      }
      case 'halfOpen': {
        const promise = call.attach(sink);
        if (circuit.started >= this.#options.halfOpenMaxCalls) {
          this.#deliver(call, false, this.#reject(call, 'halfOpen'));
          return promise;
        }
        circuit.started++;
        call.trial = circuit;
        this.#attempt(call);
        return promise;
      }
    }
  }

  /**
   * Ends a call: a result judged a failure is returned (it travelled as a `ResultFailure`),
   * an error goes to the fallback when one was set, and the outcome is reported to the
   * call's sink (or the promise `execute` returned).
   */
  #deliver(call: Call, ok: boolean, value: unknown): void {
    if (!ok && value instanceof ResultFailure) {
      ok = true;
      value = value.value;
    }
    if (ok || !call.withFallback) {
      call.report(ok, value);
      return;
    }
    let result: unknown;
    try {
      result = this.#fallBack(call, value);
    } catch (error) {
      call.report(false, error);
      return;
    }
    // A fallback's promise is the answer as it settles: its rejection is not handed to the fallback again.
    if (result !== null && typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
      call.reportWhen(result as PromiseLike<unknown>);
    } else call.report(true, result);
  }

  #deliverWhen(call: Call, settled: PromiseLike<unknown>): void {
    settled.then(
      (value) => this.#deliver(call, true, value),
      (error: unknown) => this.#deliver(call, false, error),
    );
  }

  /** Where an attempt's outcome goes: opossum's action promise, or the call's end. */
  #out(call: Call, ok: boolean, value: unknown): void {
    const extra = call.extra;
    const settle = ok ? extra?.actionResolve : extra?.actionReject;
    if (settle === undefined) this.#deliver(call, ok, value);
    else settle(value);
  }

  #fallBack(call: Call, error: unknown): unknown {
    const fallback = this.#fallback as ((...argsAndError: unknown[]) => unknown) | undefined;
    if (fallback === undefined || call.ignored || isBreakerDisposedError(error)) throw error;
    const result = fallback(...(call.args ?? []), error);
    this.opossum.emit('fallback', result, error);
    return result;
  }

  #reject(call: Call, state: 'open' | 'halfOpen'): BrokenCircuitError {
    call.release();
    const retryAfterMs = this.retryAfterMs();
    this.#counts.rejected++;
    const error = withoutStack(() => new BrokenCircuitError(this.name, state, retryAfterMs));
    if (this.#events.has('reject')) this.#events.emit('reject', { name: this.name, state, retryAfterMs });
    // opossum counts it in its window, as if it had refused the call itself.
    this.opossum.emit('reject', error);
    return error;
  }

  /**
   * Runs one call in a scope of its own and classifies how it ended. The hot path: no
   * AbortController unless the work reads its signal, a listener on the caller's signal
   * only when there is one, and no timer of its own (all calls share one, see
   * {@link DeadlineList}).
   */
  #attempt(call: Call): void {
    const joined = call.joined;
    if (this.#timed || this.#events.has('success') || this.#events.has('failure')) {
      call.flags |= TIMED;
      const startedAt = call.stampStart(this.#clock, joined);
      // Without a timeout the deadline stays at infinity: no arithmetic, no store.
      if (this.#timeoutMs !== Number.POSITIVE_INFINITY) call.deadline = startedAt + this.#timeoutMs;
    } else if (joined !== undefined) {
      // Not timed: no clock reading, and the policies inside still share the enclosing stamp.
      call.startedAt = joined.startedAt;
      call.startClock = joined.startClock;
    }
    if (call.trial === undefined) {
      const bucket = this.#window?.[0];
      call.bucket = bucket;
      if (call.direct && bucket !== undefined) bucket.fires++;
    }
    this.#inFlight.add(call);
    // Cancelling the call must end it at once, even if the work ignores its signal.
    call.watch();
    if (call.aborted) {
      this.#settle(call, CANCELLED, call.reason);
      return;
    }
    runInside(call.fn, call.inner, call, call);
  }

  /** opossum's action: runs the call and settles the promise opossum waits on. */
  #actionAttempt(call: Call): Promise<unknown> {
    const extra = (call.extra ??= new CallExtra(undefined, undefined, undefined));
    const settled = new Promise((resolve, reject) => {
      extra.actionResolve = resolve;
      extra.actionReject = reject;
    });
    this.#attempt(call);
    return settled;
  }

  #settle(call: Call, how: Settled, value: unknown): void {
    if (call.settled) return;
    call.settled = true;
    if (how !== TIMED_OUT) this.#inFlight.remove(call);
    // A success nobody needs the duration of (a deadline was all the start was read for) reads no clock at its end.
    const durationMs =
      how === RESOLVED && !this.#durations && !this.#events.has('success') && !this.#events.has('failure')
        ? Number.NaN
        : this.#elapsed(call);
    if (how === RESOLVED) {
      call.release();
      this.#classifyResult(call, value, durationMs);
      return;
    }
    if (how === CANCELLED && call.bucket !== undefined) this.#uncount(call);
    const error = this.#classifyError(call, value, how, durationMs);
    if (call.direct && how !== CANCELLED) this.#replay(call, error);
    else this.#out(call, false, error);
    // Abort after settling, so whatever the work does on abort cannot change the outcome.
    if (how === TIMED_OUT || how === CANCELLED) call.abort(value);
    call.release();
  }

  /**
   * Hands the outcome of a call that bypassed opossum's `fire()` to opossum after the fact:
   * its `fire` is taken back from the bucket that counted it, and the call is fired again
   * with an action that settles with the known outcome, so opossum counts it (`fire`, then
   * `failure`, or a filtered error's `success`), emits its events, and decides whether to
   * open before the caller sees the rejection, as on the path through `fire()`.
   */
  #replay(call: Call, error: unknown): void {
    const opossum = this.opossum;
    if (opossum.closed) {
      (call.bucket as Bucket).fires--;
      call.replay = Promise.reject(error);
      this.#deliverWhen(call, opossum.fire(call));
      return;
    }
    // The circuit opened while the call ran: opossum would have counted it (its `fire` is
    // already in the window) without reopening, and rejected with its error.
    opossum.emit(call.ignored ? 'success' : 'failure', error, this.#elapsed(call), call.args ?? []);
    this.#deliver(call, false, error);
  }

  /** How long `call` has run, in ms; NaN for a call that was not timed (see {@link #timed}). */
  #elapsed(call: Call): number {
    return (call.flags & TIMED) === 0 ? Number.NaN : this.#clock.now() - call.startedAt;
  }

  #classifyResult(call: Call, value: unknown, durationMs: number): void {
    let failed: boolean;
    let ignored = false;
    try {
      if (call.isFailure !== undefined) failed = (call.isFailure as (result: unknown) => boolean)(value) === true;
      else {
        const verdict = call.verdict(true, value);
        if (verdict === undefined) failed = this.#options.isFailure?.(value as R) === true;
        else {
          failed = verdict === 'failure' || verdict === 'overload';
          ignored = verdict === 'ignore';
        }
      }
    } catch (error) {
      this.#failed(call, 'error', durationMs, error, undefined);
      this.#fail(call, error);
      return;
    }
    if (failed || durationMs >= this.#options.slowCallDurationMs) {
      this.#failed(call, failed ? 'result' : 'slow', durationMs, undefined, value);
      this.#fail(call, new ResultFailure(value));
      return;
    }
    if (ignored) {
      // A value the chain's classifier says tells nothing about the dependency: returned, not counted.
      this.#ignored(call, value, false);
      if (call.direct) this.#replay(call, new ResultFailure(value));
      else this.#out(call, false, new ResultFailure(value));
      return;
    }
    this.#counts.success++;
    this.#failing = false;
    if (this.#recordLatency) this.#latency.record(durationMs);
    if (call.direct) {
      const window = this.#window as Bucket[];
      (window[0] as Bucket).successes++;
    }
    // The outcome's event first, then the transition it causes (as on the path through opossum).
    if (this.#events.has('success')) this.#events.emit('success', { name: this.name, durationMs, trial: call.trial !== undefined });
    if (call.trial !== undefined) this.#trialEnded(call, true);
    this.#out(call, true, value);
  }

  /** Rejects a call with a counted failure (through opossum when the call bypassed it). */
  #fail(call: Call, error: unknown): void {
    if (call.direct) this.#replay(call, error);
    else this.#out(call, false, error);
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
      const verdict = call.verdict(false, error);
      callerError = verdict === undefined ? this.#options.errorFilter?.(error) === true : verdict === 'success' || verdict === 'ignore';
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
   * that counted it and, for a call through `fire()`, ahead of time the success opossum is
   * about to count for it (a filtered error, in a microtask, before any bucket rotation).
   * A dependency that hangs until clients give up must not look healthier for each client
   * that left. A direct call is settled without opossum: taking its `fire` back is enough.
   */
  #uncount(call: Call): void {
    (call.bucket as Bucket).fires--;
    // A disabled opossum counts fires only.
    if (!call.direct && this.opossum.enabled) ((this.#window as Bucket[])[0] as Bucket).successes--;
  }

  #ignored(call: Call, error: unknown, cancelled: boolean): unknown {
    call.ignored = true;
    this.#counts.ignored++;
    const trial = call.trial;
    if (trial !== undefined) {
      // A cancelled trial says nothing about the dependency: give its slot back.
      // A caller error (a 4xx) shows the dependency answering: a successful trial.
      if (cancelled) {
        if (trial === this.#circuit) trial.started--;
      } else {
        this.#trialEnded(call, true);
      }
    }
    return error;
  }

  #failed(call: Call, outcome: 'error' | 'result' | 'slow' | 'timeout', durationMs: number, error: unknown, result: unknown): void {
    this.#counts[outcome]++;
    this.#failing = true;
    if (this.#options.recordLatency) this.#latency.record(durationMs);
    if (this.#events.has('failure')) {
      this.#events.emit('failure', { name: this.name, outcome, durationMs, error, result, trial: call.trial !== undefined });
    }
    if (call.trial !== undefined) this.#trialEnded(call, false);
  }

  #trialEnded(call: Call, succeeded: boolean): void {
    const trial = call.trial;
    if (trial === undefined || trial !== this.#circuit) return;
    const { halfOpenMaxCalls, halfOpenSuccessThreshold } = this.#options;
    if (succeeded) {
      trial.succeeded++;
      if (trial.succeeded >= halfOpenSuccessThreshold) this.#toClosed();
    } else {
      trial.failed++;
      if (trial.failed > halfOpenMaxCalls - halfOpenSuccessThreshold) {
        this.#toOpen('trialFailure', this.#options.resetTimeoutMs);
      }
    }
  }

  #toOpen(reason: OpenReason, forMs: number): void {
    this.#clearTimers();
    const circuit: Circuit = {
      kind: 'open',
      reason,
      openedAt: this.#options.clock.now(),
      openedAtWall: Date.now(),
      forMs,
      resetTimer: undefined,
    };
    this.#circuit = circuit;
    if (!this.opossum.opened) this.#moveOpossum(() => this.opossum.open());
    circuit.resetTimer = setTimeout(() => this.#toHalfOpen(), forMs);
    circuit.resetTimer.unref?.();
    this.#events.emit('open', { name: this.name, reason, retryAfterMs: forMs });
  }

  #toHalfOpen(): void {
    this.#clearTimers();
    const maxMs = this.#options.halfOpenMaxDurationMs;
    const circuit: HalfOpenCircuit = {
      kind: 'halfOpen',
      endsAt: this.#options.clock.now() + maxMs,
      started: 0,
      succeeded: 0,
      failed: 0,
      expiryTimer: undefined,
    };
    this.#circuit = circuit;
    circuit.expiryTimer = setTimeout(() => {
      if (this.#circuit === circuit) this.#toOpen('halfOpenExpired', this.#options.resetTimeoutMs);
    }, maxMs);
    circuit.expiryTimer.unref?.();
    this.#events.emit('halfOpen', { name: this.name });
  }

  #toClosed(): void {
    this.#clearTimers();
    this.#circuit = CLOSED;
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

  #moveOpossum(move: () => void): void {
    this.#syncing = true;
    try {
      move();
    } finally {
      this.#syncing = false;
    }
  }

  /** Clears the timer of the current state (its object is replaced right after, or the breaker is disposed). */
  #clearTimers(): void {
    const circuit = this.#circuit;
    if (circuit.kind === 'open') clearTimeout(circuit.resetTimer);
    else if (circuit.kind === 'halfOpen') clearTimeout(circuit.expiryTimer);
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
    const circuit = this.#circuit;
    if (circuit.kind !== 'open') return;
    // Count the open period from when it really began, before the restart.
    circuit.openedAt -= elapsed;
    circuit.openedAtWall -= elapsed;
    clearTimeout(circuit.resetTimer);
    circuit.resetTimer = setTimeout(() => this.#toHalfOpen(), resetMs - elapsed);
    circuit.resetTimer.unref?.();
  }
}
