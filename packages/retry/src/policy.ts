import {
  CallScope,
  type CallSink,
  type Clock,
  declareJoinsScope,
  declareStaged,
  durationMs,
  Emitter,
  func,
  InvalidOptionError,
  integer,
  type Listener,
  MAX_TIMER_MS,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  refuse,
  runInside,
  type Stage,
  StageCall,
  sleep,
  systemClock,
  TimeoutError,
  type Unsubscribe,
  withoutStack,
} from '@ballast/common';
import pRetryImport, { AbortError as PRetryAbortError, type RetryContext } from 'p-retry';
import { AttemptScope } from './attempt-scope.ts';
import { type Backoff, exponentialBackoff } from './backoff.ts';
import type { RetryBudget, RetryBudgetStats } from './budget.ts';
import { type AttemptOutcome, defaultRetryOn, isRetryableResponse, type RetryClassifier } from './classify.ts';
import { RetryBudgetExhaustedError, RetryDeadlineError, RetryPolicyClosedError } from './errors.ts';
import { type Expirable, ExpiryQueue } from './expiry.ts';
import { esmDefault } from './interop.ts';
import { defaultDelayHint } from './retry-after.ts';

/** What the operation receives on each attempt (a {@link PolicyContext}). */
export interface AttemptContext extends PolicyContext {
  /** The attempt number, 1 for the first. Hedges use it to pick another endpoint. */
  readonly attempt: number;
  /**
   * This attempt's own signal: it aborts when the attempt times out (`timeoutMs`), the
   * deadline passes, the caller's signal aborts, the policy closes, or (hedging) another
   * attempt won. Pass it on (`fetch(url, { signal })`) so the work really stops.
   */
  readonly signal: AbortSignal;
}

/** The operation to retry. */
export type Attempt<T> = (context: AttemptContext) => T | PromiseLike<T>;

/**
 * Options of {@link RetryPolicy} and {@link retry}. All durations are in milliseconds.
 */
export interface RetryOptions<T = unknown> {
  /**
   * Attempts in all, the first one included: `3` means one call and at most two
   * retries (p-retry's `retries: 2`). For hedging, the most attempts started in all.
   * @default 3
   */
  maxAttempts?: number;
  /** Delays between attempts. @default exponentialBackoff({ jitter: 'equal' }) (100 ms base, ×2, 10 s cap: every delay is at least half its ceiling, never zero) */
  backoff?: Backoff;
  /**
   * Which outcomes are retried, errors and values alike (e.g. a 503 response).
   * A `false` ends the call at once with that outcome.
   * @default defaultRetryOn
   */
  retryOn?: RetryClassifier<T>;
  /**
   * Reads a server's requested delay (ms) from an outcome, e.g. `Retry-After`. The next
   * attempt never starts earlier than the hint; when the hint does not fit before the
   * deadline, the call gives up at once. `false` ignores servers' hints.
   * @default defaultDelayHint (Retry-After, RateLimit-Reset, `error.retryAfterMs`)
   */
  delayHint?: ((outcome: AttemptOutcome<T>) => number | undefined) | false;
  /** Time limit of each attempt; the attempt's signal aborts with a `TimeoutError`, which is retried. @default Infinity */
  timeoutMs?: number;
  /**
   * Time limit of the whole call, attempts and waits included. The attempt in flight is
   * aborted when it passes, and no wait starts that would end past it; the call then
   * rejects with {@link RetryDeadlineError}. `Infinity` removes the bound.
   * @default 30_000
   */
  deadlineMs?: number;
  /** A retry budget shared by every call to the same upstream. @default undefined (no budget) */
  budget?: RetryBudget;
  /**
   * Called with a value that is being retried or that lost a hedge, so it can release
   * what it holds (e.g. `response.body?.cancel()`). Not called for the value that leaves
   * the call: the one returned, or the `lastValue` of a {@link RetryBudgetExhaustedError}.
   * @default undefined
   */
  discard?: (value: T) => void;
  /** Hedging: delay before starting the next attempt while the others are still in flight. @default 100 */
  hedgeDelayMs?: number;
  /** Time source, for fake timers. @default systemClock */
  clock?: Clock;
  /** Uniform random numbers in [0, 1) for jitter. @default Math.random */
  random?: () => number;
}

/** Why a call stopped retrying without a success. */
export type GiveUpReason = 'attempts' | 'notRetryable' | 'deadline' | 'budget' | 'aborted' | 'closed';

/** Events of a {@link RetryPolicy}, named after transitions. */
export interface RetryEvents {
  /** An attempt failed and another will start after `delayMs`. */
  retry: { attempt: number; delayMs: number; hintMs: number | undefined; outcome: AttemptOutcome<unknown> };
  /** A call ended without success; `outcome` is its last (undefined when none ended). */
  giveUp: { attempts: number; reason: GiveUpReason; outcome: AttemptOutcome<unknown> | undefined };
  /** The budget refused a retry (the call ends) or a hedge (the call goes on without it). */
  budgetExhausted: { attempts: number; kind: 'retry' | 'hedge'; budget: RetryBudgetStats };
  /** A hedged attempt started while `inFlight` others were still running. */
  hedge: { attempt: number; afterMs: number; inFlight: number };
}

/** A snapshot of a policy's counters since it was created. */
export interface RetryStats {
  /** Calls started (`execute` and `hedge`). */
  calls: number;
  /** Attempts started, first attempts included. */
  attempts: number;
  /** Retries scheduled, one per `retry` event (a wait the caller aborts still counts). */
  retries: number;
  /** Hedged attempts started. */
  hedges: number;
  /** Calls that ended with a value the classifier accepted. */
  successes: number;
  /** Calls that gave up. */
  giveUps: number;
  /** Retries and hedges the budget refused. */
  budgetExhausted: number;
  /** Calls in flight now. */
  inFlight: number;
}

/** Per-call options of {@link RetryPolicy.execute} and {@link RetryPolicy.hedge}. */
export interface RetryExecuteOptions<R = unknown> extends PolicyExecuteOptions<R> {
  /** Cancels the call: the wait and the attempt in flight stop, and the call rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Replaces the policy's classifier for this call, e.g. to retry a non-idempotent
   * request only when it never reached the server. @default the policy's `retryOn`
   */
  retryOn?: RetryClassifier<R>;
}

/** @deprecated Renamed {@link RetryExecuteOptions} (the circuit breaker has its own); this alias goes in the next major version. */
export type ExecuteOptions<R = unknown> = RetryExecuteOptions<R>;

/** What a policy remembers about one call in flight, so `close()` can abort it; an entry of its in-flight list. */
interface CallState {
  current: { abort(reason: unknown): void } | undefined;
  last: AttemptOutcome<unknown> | undefined;
  attempts: number;
  /** Why the call stopped retrying, once known (a deadline, a refused budget). */
  stopReason: GiveUpReason | undefined;
  prev: CallState | undefined;
  next: CallState | undefined;
}

/**
 * One call to {@link RetryPolicy.execute}, and the scope of its first attempt: the context
 * the operation receives first is this object, so the success path allocates one object
 * for the call, its first attempt's context, its entry on the shared deadline timer and
 * what `close()` aborts. Later attempts run in scopes of their own under {@link callScope}.
 */
class RetryCall<R> extends StageCall implements CallState, Expirable {
  declare readonly policy: RetryPolicy<never>;
  declare readonly fn: Attempt<R>;
  /** The rest of a chain between the policy and `fn`, run by every attempt. */
  declare readonly inner: Stage | undefined;
  declare readonly retryOn: RetryClassifier<R>;
  /** The scope of an enclosing policy this call joined; undefined for a call of its own. */
  declare readonly joined: CallScope | undefined;
  declare deadlineAt: number;
  declare attempts: number;
  declare prev: CallState | undefined;
  declare next: CallState | undefined;
  /** {@link FIRST_SETTLED}, {@link UNSTAMPED}. */
  declare flags: number;
  declare expiresAt: number;
  declare expiryIndex: number;
  /** The state of a call that goes on after its first attempt, allocated then. */
  declare rest: RetryRest | undefined;

  constructor(
    policy: RetryPolicy<never>,
    fn: Attempt<R>,
    inner: Stage | undefined,
    retryOn: RetryClassifier<R>,
    options: RetryExecuteOptions<never> | undefined,
    joined: CallScope | undefined,
  ) {
    super(options, joined);
    // The first attempt is attempt 1, whatever the attempt of an enclosing scope.
    this.attempt = 1;
    this.policy = policy;
    this.fn = fn;
    this.inner = inner;
    this.retryOn = retryOn;
    this.joined = joined;
    this.deadlineAt = 0;
    this.attempts = 1;
    this.prev = undefined;
    this.next = undefined;
    this.flags = 0;
    this.expiresAt = Number.POSITIVE_INFINITY;
    this.expiryIndex = -1;
    this.rest = undefined;
  }

  /** The first attempt settled (a late value is then released with `discard`). */
  get firstSettled(): boolean {
    return (this.flags & FIRST_SETTLED) !== 0;
  }

  set firstSettled(on: boolean) {
    this.flags = on ? this.flags | FIRST_SETTLED : this.flags & ~FIRST_SETTLED;
  }

  /** The call's start time is known (see `RetryPolicy.#stampPending`). */
  get stamped(): boolean {
    return (this.flags & UNSTAMPED) === 0;
  }

  set stamped(on: boolean) {
    this.flags = on ? this.flags & ~UNSTAMPED : this.flags | UNSTAMPED;
  }

  /** What `close()` aborts after the first attempt (during it, the call itself). */
  get current(): { abort(reason: unknown): void } | undefined {
    return this.rest?.current;
  }

  set current(current: { abort(reason: unknown): void } | undefined) {
    (this.rest ??= new RetryRest()).current = current;
  }

  get last(): AttemptOutcome<unknown> | undefined {
    return this.rest?.last;
  }

  set last(last: AttemptOutcome<unknown> | undefined) {
    (this.rest ??= new RetryRest()).last = last;
  }

  get stopReason(): GiveUpReason | undefined {
    return this.rest?.stopReason;
  }

  set stopReason(reason: GiveUpReason | undefined) {
    (this.rest ??= new RetryRest()).stopReason = reason;
  }

  /** True once the caller (or the enclosing policy) aborted the call; the first attempt's own timeout is not that. */
  get callerAborted(): boolean {
    return this.joined === undefined ? this.callerSignal?.aborted === true : this.joined.aborted;
  }

  /** The scope later attempts and waits run under: the enclosing policy's, or one following the caller's signal. */
  get callScope(): CallScope {
    if (this.joined !== undefined) return this.joined;
    const rest = (this.rest ??= new RetryRest());
    rest.later ??= CallScope.root(this.callerSignal, this.classify);
    return rest.later;
  }

  /** The first attempt's time limit passed: what was left of the deadline, or `timeoutMs`. */
  expire(): void {
    const { deadlineMs, timeoutMs } = this.policy;
    if (deadlineMs <= timeoutMs) this.stopReason = 'deadline';
    this.abort(new TimeoutError(Math.min(deadlineMs, timeoutMs)));
  }

  /** Releases the first attempt's scope, and the later attempts' one made for this call. */
  releaseAll(): void {
    this.release();
    this.rest?.later?.release();
  }

  /** How the first attempt ended. */
  settle(ok: boolean, value: unknown): void {
    firstSettled(this as RetryCall<unknown>, ok, value);
  }

  protected override aborting(reason: unknown): void {
    firstSettled(this as RetryCall<unknown>, false, reason);
  }
}

let firstSettled: (call: RetryCall<unknown>, ok: boolean, valueOrError: unknown) => void;

const FIRST_SETTLED = 1;
const UNSTAMPED = 2;

/** What a call keeps once its first attempt did not end it: p-retry's loop, waits and later attempts. */
class RetryRest {
  current: { abort(reason: unknown): void } | undefined = undefined;
  last: AttemptOutcome<unknown> | undefined = undefined;
  stopReason: GiveUpReason | undefined = undefined;
  /** The scope later attempts run under, for a call of its own (following the caller's signal). */
  later: CallScope | undefined = undefined;
}

// p-retry only retries Error instances that are not TypeErrors; every outcome travels through it wrapped in this.
class Failed extends Error {
  readonly outcome: AttemptOutcome<unknown>;
  readonly retryable: boolean;
  constructor(outcome: AttemptOutcome<unknown>, retryable: boolean) {
    super('attempt failed');
    this.outcome = outcome;
    this.retryable = retryable;
  }
}

const HEDGE_LOST = 'another hedged attempt won';
const pRetry = esmDefault(pRetryImport);

/**
 * A retry policy: validated options, typed events and counters, shared by every call
 * made through it. Retries run on p-retry (its attempt loop, `retries`, `shouldRetry`
 * and `signal` checks); Ballast adds what p-retry lacks: jittered backoff strategies,
 * server-driven delays, retry on returned values, per-attempt timeouts and an overall
 * deadline that abort the attempt in flight, retry budgets, and hedging.
 *
 * @example
 * ```ts
 * const budget = ratioBudget();            // one per upstream
 * const policy = new RetryPolicy({ maxAttempts: 3, timeoutMs: 2_000, budget });
 * policy.on('retry', ({ attempt, delayMs }) => log.info({ attempt, delayMs }, 'retrying'));
 * const user = await policy.execute(({ signal }) => getUser(id, { signal }), { signal: req.signal });
 * ```
 */
export class RetryPolicy<T = unknown> implements Policy<T, AttemptContext>, Disposable {
  static {
    declareJoinsScope(RetryPolicy);
  }

  /** Attempts in all, the first included. */
  readonly maxAttempts: number;
  /** Per-attempt time limit, ms. */
  readonly timeoutMs: number;
  /** Whole-call time limit, ms. */
  readonly deadlineMs: number;
  /** Hedging delay, ms. */
  readonly hedgeDelayMs: number;
  readonly #backoff: Backoff;
  readonly #retryOn: RetryClassifier<T>;
  readonly #delayHint: ((outcome: AttemptOutcome<T>) => number | undefined) | undefined;
  readonly #budget: RetryBudget | undefined;
  readonly #discard: ((value: T) => void) | undefined;
  readonly #clock: Clock;
  readonly #random: () => number;
  readonly #events = new Emitter<RetryEvents>();
  /** Calls in flight (an intrusive list, so adding and removing one allocates nothing). */
  #head: CallState | undefined;
  #inFlight = 0;
  readonly #expiries: ExpiryQueue;
  /** True when calls have a time limit (a finite `deadlineMs` or `timeoutMs`). */
  readonly #limited: boolean;
  /** Calls whose start is not stamped yet, and the immediate that stamps them. */
  #unstamped = 0;
  #stamper: ReturnType<typeof setImmediate> | undefined = undefined;
  readonly #stats = { calls: 0, attempts: 0, retries: 0, hedges: 0, successes: 0, giveUps: 0, budgetExhausted: 0 };
  #closed = false;

  static {
    firstSettled = (call, ok, valueOrError) => (call.policy as RetryPolicy<unknown>).#firstSettled(call, ok, valueOrError);
    declareStaged(RetryPolicy, function (fn, options, sink, inner) {
      return this.#execute(fn as Attempt<unknown>, options, sink, inner);
    });
  }

  /** @throws InvalidOptionError naming the first invalid option. */
  constructor(options: RetryOptions<T> = {}) {
    this.maxAttempts = integer('maxAttempts', options.maxAttempts ?? 3, { min: 1 });
    this.timeoutMs = optionalDuration('timeoutMs', options.timeoutMs ?? Number.POSITIVE_INFINITY);
    this.deadlineMs = optionalDuration('deadlineMs', options.deadlineMs ?? 30_000);
    this.hedgeDelayMs = durationMs('hedgeDelayMs', options.hedgeDelayMs ?? 100);
    const backoff = options.backoff ?? exponentialBackoff({ jitter: 'equal' });
    if (typeof backoff?.start !== 'function') throw new InvalidOptionError('backoff', 'a Backoff (an object with start())', backoff);
    this.#backoff = backoff;
    this.#retryOn = options.retryOn === undefined ? defaultRetryOn : func('retryOn', options.retryOn);
    this.#delayHint =
      options.delayHint === false
        ? undefined
        : options.delayHint === undefined
          ? defaultDelayHint
          : func<(outcome: AttemptOutcome<T>) => number | undefined>('delayHint', options.delayHint);
    const budget = options.budget;
    if (budget !== undefined && typeof budget?.tryAcquire !== 'function') throw new InvalidOptionError('budget', 'a RetryBudget', budget);
    this.#budget = budget;
    this.#discard = options.discard === undefined ? undefined : func<(value: T) => void>('discard', options.discard);
    this.#clock = options.clock ?? systemClock;
    if (typeof this.#clock?.now !== 'function') throw new InvalidOptionError('clock', 'a Clock (an object with now())', options.clock);
    this.#expiries = new ExpiryQueue(this.#clock);
    this.#limited = this.deadlineMs !== Number.POSITIVE_INFINITY || this.timeoutMs !== Number.POSITIVE_INFINITY;
    this.#random = options.random === undefined ? Math.random : func('random', options.random);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof RetryEvents>(event: K, listener: Listener<RetryEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** A snapshot of the counters. */
  stats(): RetryStats {
    return { ...this.#stats, inFlight: this.#inFlight };
  }

  /**
   * Runs `fn` until it succeeds, the classifier declines an outcome, `maxAttempts` are
   * spent, the deadline passes, the budget refuses, or the caller aborts.
   *
   * Resolves with the first accepted value, or with the last value when attempts run out
   * or the deadline stops retrying on a value (a 503 after the last attempt is returned,
   * not thrown). Rejects with {@link RetryBudgetExhaustedError} whenever the budget
   * refused a retry, on an error (`cause`) or a value (`lastValue`, which the caller
   * then owns: `discard` is not called on it); with the last error as thrown when
   * attempts run out or it is not retryable; {@link RetryDeadlineError} (last error as
   * `cause`) when the deadline stopped it; `signal.reason` when the caller aborted;
   * {@link RetryPolicyClosedError} once the policy is closed.
   */
  execute<R extends T>(fn: Attempt<R>, options?: RetryExecuteOptions<R>): Promise<R> {
    return this.#execute(fn, options as RetryExecuteOptions<never> | undefined, undefined, undefined) as Promise<R>;
  }

  /** One call of {@link execute}, or one call as a stage of a chain (see `StagedPolicy`). */
  #execute<R extends T>(
    fn: Attempt<R>,
    options: RetryExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined {
    if (this.#closed) return refuse(sink, new RetryPolicyClosedError());
    const joined = CallScope.isScope(options) ? options : undefined;
    let retryOn = this.#retryOn as RetryClassifier<R>;
    if (options !== undefined && joined === undefined) {
      try {
        if (options.retryOn !== undefined) retryOn = func('retryOn', options.retryOn);
        CallScope.check(options);
      } catch (error) {
        return refuse(sink, error);
      }
    }
    if (joined !== undefined ? joined.aborted : options?.signal?.aborted) {
      return refuse(sink, joined !== undefined ? joined.reason : options?.signal?.reason);
    }
    const call = new RetryCall<R>(this as RetryPolicy<never>, fn, inner, retryOn, options, joined);
    const promise = call.attach(sink);
    this.#stats.calls++;
    // #track, written out: the success path's one list insertion.
    const head = this.#head;
    call.next = head;
    if (head !== undefined) head.prev = call;
    this.#head = call;
    this.#inFlight++;
    this.#budget?.onRequest();
    this.#firstAttempt(call);
    return promise;
  }

  /**
   * The first attempt, on the success path: run here, without p-retry, on one object (the
   * call, which is also the attempt's context). Its time limit (`timeoutMs`, or what is
   * left of the deadline) is an entry on the policy's shared timer, counted from the
   * call's start: the start an enclosing policy stamped on the same clock, or else the
   * time at the end of the event-loop turn the call started in (see {@link #stampPending}),
   * so that a call that ends within its turn reads no clock. Only an outcome that does
   * not end the call hands it to p-retry.
   */
  #firstAttempt<R extends T>(call: RetryCall<R>): void {
    this.#stats.attempts++;
    if (this.#limited) {
      const joined = call.joined;
      if (joined !== undefined && joined.startClock === this.#clock) this.#limit(call, call.stampStart(this.#clock, joined));
      else {
        call.stamped = false;
        this.#unstamped++;
        this.#stamper ??= setImmediate(this.#stampPending);
      }
    } else call.deadlineAt = Number.POSITIVE_INFINITY;
    if (call.aborted) {
      this.#firstSettled(call, false, call.reason);
      return;
    }
    call.watch();
    runInside(call.fn as (context: PolicyContext) => unknown, call.inner, call, call);
  }

  /** Sets the deadline of a call that started at clock time `startedAt`, and its first attempt's time limit. */
  #limit<R extends T>(call: RetryCall<R>, startedAt: number): void {
    call.stamped = true;
    call.deadlineAt = startedAt + this.deadlineMs;
    const limit = Math.min(this.deadlineMs, this.timeoutMs);
    if (limit !== Number.POSITIVE_INFINITY && !call.firstSettled) {
      call.expiresAt = startedAt + limit;
      this.#expiries.add(call);
    }
  }

  /**
   * Stamps the calls that started in this event-loop turn and are still running: their
   * deadline and first attempt's time limit count from now, the end of that turn (never
   * earlier than their start, and within one turn of it). A call that ended meanwhile,
   * as most do, needed no clock reading and no timer entry. Runs once per turn with calls
   * to stamp (an immediate), not once per call.
   */
  readonly #stampPending = (): void => {
    this.#stamper = undefined;
    if (this.#unstamped === 0) return;
    const now = this.#clock.now();
    for (let state = this.#head; state !== undefined && this.#unstamped > 0; state = state.next) {
      if (state instanceof RetryCall && !state.stamped) {
        this.#unstamped--;
        this.#limit(state as RetryCall<T>, now);
      }
    }
  };

  #firstSettled<R extends T>(call: RetryCall<R>, ok: boolean, valueOrError: unknown): void {
    if (call.firstSettled) {
      if (ok) this.#discard?.(valueOrError as T);
      return;
    }
    call.firstSettled = true;
    const stamped = call.stamped;
    if (stamped) this.#expiries.delete(call);
    else {
      this.#unstamped--;
      call.stamped = true;
    }
    call.release();
    // An abort by the caller (or an enclosing policy) or by close() is not a failed attempt: p-retry reports it.
    if (ok || !(call.callerAborted || this.#closed)) {
      let value: R;
      try {
        value = this.#judge(call, ok, valueOrError, 1);
      } catch (error) {
        this.#retryAfterFirst(call, stamped, error);
        return;
      }
      this.#stats.successes++;
      // #untrack, written out: the call is on the list (its first attempt just ended).
      const { prev, next } = call;
      if (prev === undefined) this.#head = next;
      else prev.next = next;
      if (next !== undefined) next.prev = prev;
      this.#inFlight--;
      call.report(true, value);
      return;
    }
    this.#retryAfterFirst(call, stamped, valueOrError);
  }

  /**
   * Hands a call whose first attempt did not end it to the retry loop. A call that ended
   * its first attempt within the turn it started in has its deadline counted from now.
   */
  #retryAfterFirst<R extends T>(call: RetryCall<R>, stamped: boolean, first: unknown): void {
    if (!stamped) call.deadlineAt = this.#clock.now() + this.deadlineMs;
    call.reportWhen(this.#retryLoop(call, first));
  }

  /**
   * Runs attempt `n` of a call and classifies its outcome: resolves with an accepted
   * value, rejects with a {@link Failed} (retryable or not), or with the error that stopped
   * the call (the caller's abort, close()).
   */
  #attempt<R extends T>(call: RetryCall<R>, n: number): Promise<R> {
    // close() may land while p-retry is between steps, when there is nothing in flight to abort.
    if (this.#closed) return Promise.reject(new RetryPolicyClosedError());
    const scope = call.callScope;
    const state: CallState = call;
    state.attempts = n;
    this.#stats.attempts++;
    const attempt = new AttemptScope(n, scope);
    state.current = attempt;
    // A clock reading is a measurable share of a fast call: the policies inside reuse this one.
    const now = attempt.context.stampStart(this.#clock, undefined);
    const byDeadline = call.deadlineAt - now <= this.timeoutMs;
    const limit = byDeadline ? call.deadlineAt - now : this.timeoutMs;
    if (limit !== Number.POSITIVE_INFINITY) attempt.limit(this.#expiries, now, limit, byDeadline);
    return attempt.run(
      call.fn,
      call.inner,
      (value) => {
        state.current = undefined;
        return this.#judge(call, true, value, n);
      },
      (error, ended) => {
        state.current = undefined;
        // An abort by the caller (or an enclosing policy) or by close() is not a failed attempt.
        if (scope.aborted || this.#closed) throw error;
        if (ended.deadlineExpired) state.stopReason = 'deadline';
        return this.#judge(call, false, error, n);
      },
      this.#discard as ((value: R) => void) | undefined,
    );
  }

  /**
   * Judges an attempt's outcome: returns an accepted value, throws a {@link Failed}. With a
   * classifier on the call (`classify`, shared by a wrap() chain), only outcomes it judges
   * `failure` or `overload` are offered to `retryOn`.
   */
  #judge<R extends T>(call: RetryCall<R>, ok: boolean, valueOrError: unknown, n: number): R {
    const { retryOn } = call;
    const state: CallState = call;
    const verdict = call.verdict(ok, valueOrError);
    // A plain success under the default classifier: no outcome object, no budget bookkeeping beyond onSuccess.
    if (ok && verdict === undefined && retryOn === defaultRetryOn && !isRetryableResponse(valueOrError)) {
      this.#budget?.onSuccess();
      return valueOrError as R;
    }
    const outcome: AttemptOutcome<R> = ok
      ? { ok: true, value: valueOrError as R, attempt: n }
      : { ok: false, error: valueOrError, attempt: n };
    state.last = outcome;
    const retryable = (verdict === undefined || verdict === 'failure' || verdict === 'overload') && retryOn(outcome);
    if (!retryable) {
      if (outcome.ok) {
        this.#budget?.onSuccess();
        return outcome.value;
      }
      throw withoutStack(() => new Failed(outcome, false));
    }
    this.#budget?.onFailure();
    throw withoutStack(() => new Failed(outcome, true));
  }

  /**
   * The rest of a call whose first attempt did not end it: p-retry's loop, with the first
   * attempt's outcome given back to it as its own first attempt, so its counting,
   * `shouldRetry` and signal checks run as they always have.
   */
  async #retryLoop<R extends T>(call: RetryCall<R>, first: unknown): Promise<R> {
    const scope = call.callScope;
    const state: CallState = call;
    const clock = this.#clock;
    const budget = this.#budget;
    let sequence: ((retry: number) => number) | undefined;
    const shouldRetry = async ({ error, attemptNumber }: RetryContext): Promise<boolean> => {
      if (!(error instanceof Failed) || !error.retryable || state.stopReason !== undefined) return false;
      const outcome = error.outcome as AttemptOutcome<T>;
      sequence ??= this.#backoff.start(this.#random);
      const backoffMs = sequence(attemptNumber);
      // A custom strategy's NaN, negative or oversized delay is brought into [0, timer limit].
      let delayMs = backoffMs >= 0 ? Math.min(backoffMs, MAX_TIMER_MS) : 0;
      const hintMs = this.#hint(outcome);
      if (hintMs !== undefined && hintMs > delayMs) delayMs = hintMs;
      const now = clock.now();
      // Waiting past the deadline would only end in a deadline error: give up now instead.
      if (delayMs >= call.deadlineAt - now) {
        state.stopReason = 'deadline';
        return false;
      }
      if (budget && !budget.tryAcquire()) {
        this.#budgetExhausted(state.attempts, 'retry', budget);
        state.stopReason = 'budget';
        return false;
      }
      if (outcome.ok) this.#discard?.(outcome.value);
      this.#stats.retries++;
      if (this.#events.has('retry')) this.#events.emit('retry', { attempt: attemptNumber, delayMs, hintMs, outcome });
      if (this.#closed) throw new RetryPolicyClosedError();
      const wait = scope.child();
      state.current = wait;
      try {
        await sleepUntil(clock, now + delayMs, wait);
      } finally {
        wait.release();
        state.current = undefined;
      }
      return true;
    };

    try {
      const value = await pRetry((n: number) => (n === 1 ? Promise.reject(first) : this.#attempt(call, n)), {
        retries: this.maxAttempts - 1,
        minTimeout: 0,
        signal: scope.aborted ? scope.signal : undefined,
        shouldRetry,
      });
      this.#stats.successes++;
      return value;
    } catch (error) {
      if (!(error instanceof Failed)) throw this.#stopped(state, error, scope);
      return this.#conclude<R>(state, error.outcome, state.stopReason ?? (error.retryable ? 'attempts' : 'notRetryable'));
    } finally {
      this.#untrack(call);
      call.releaseAll();
    }
  }

  /**
   * Hedged requests ("The Tail at Scale"): starts `fn`, and every `hedgeDelayMs` while
   * no attempt has succeeded starts another (at most `maxAttempts` in all, each asking
   * the budget first); a retryable failure starts the next one at once, or once the
   * server's hint (`Retry-After`) has passed, and gives up when that hint does not fit
   * before the deadline. The first accepted outcome wins and the others are aborted
   * through their signals. Use `attempt` to send each hedge to another endpoint.
   *
   * Resolves and rejects like {@link RetryPolicy.execute}.
   */
  hedge<R extends T>(fn: Attempt<R>, options?: RetryExecuteOptions<R>): Promise<R> {
    if (this.#closed) return Promise.reject(new RetryPolicyClosedError());
    let retryOn: RetryClassifier<R>;
    try {
      retryOn = options?.retryOn === undefined ? (this.#retryOn as RetryClassifier<R>) : func('retryOn', options.retryOn);
    } catch (error) {
      return Promise.reject(error);
    }
    const scope = CallScope.start(options);
    if (!(scope instanceof CallScope)) return scope;
    const owned = scope === options ? undefined : scope;
    const budget = this.#budget;
    const clock = this.#clock;
    const startedAt = clock.now();
    const deadlineAt = startedAt + this.deadlineMs;
    // The call's own scope: the deadline aborts it (and every attempt under it), not the caller's.
    const call = scope.child();
    const deadlineTimer =
      this.deadlineMs === Number.POSITIVE_INFINITY
        ? undefined
        : setTimeout(() => call.abort(new TimeoutError(this.deadlineMs)), this.deadlineMs);
    const state: CallState = { current: call, last: undefined, attempts: 0, stopReason: undefined, prev: undefined, next: undefined };
    const scopes: AttemptScope[] = [];
    this.#stats.calls++;
    this.#track(state);
    budget?.onRequest();

    return new Promise<R>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      let running = 0;
      let settled = false;
      // Clock time before which no attempt starts: the latest server hint.
      let notBefore = Number.NEGATIVE_INFINITY;

      const finish = (settle: () => void): void => {
        settled = true;
        clearTimeout(timer);
        clearTimeout(deadlineTimer);
        call.release();
        for (const attempt of scopes) attempt.abort(new DOMException(HEDGE_LOST, 'AbortError'));
        this.#untrack(state);
        owned?.release();
        settle();
      };
      const giveUp = (reason: GiveUpReason, outcome: AttemptOutcome<unknown>): void => {
        finish(() => {
          try {
            resolve(this.#conclude<R>(state, outcome, reason));
          } catch (error) {
            reject(error);
          }
        });
      };
      call.onAbort = (reason) => {
        if (settled) return;
        if (scope.aborted || this.#closed) finish(() => reject(this.#stopped(state, reason, scope)));
        else giveUp('deadline', state.last ?? { ok: false, error: reason, attempt: state.attempts });
      };

      /** Starts the next attempt at clock time `at` (at once when it has passed). */
      const schedule = (at: number): void => {
        clearTimeout(timer);
        timer = setTimeout(onTimer, Math.min(MAX_TIMER_MS, Math.ceil(Math.max(0, at - clock.now()))));
      };
      const onTimer = (): void => {
        timer = undefined;
        if (settled) return;
        // Timers may fire a little early; a server's hint is never cut short.
        if (clock.now() < notBefore) schedule(notBefore);
        else if (!tryHedge() && running === 0 && state.last) giveUp('budget', state.last);
      };
      const launch = (): void => {
        const n = ++state.attempts;
        running++;
        this.#stats.attempts++;
        const attempt = new AttemptScope(n, call);
        scopes.push(attempt);
        if (this.timeoutMs !== Number.POSITIVE_INFINITY) attempt.limit(this.#expiries, clock.now(), this.timeoutMs, false);
        attempt
          .run(
            fn,
            undefined,
            (value) => onOutcome({ ok: true, value, attempt: n }),
            (error) => onOutcome({ ok: false, error, attempt: n }),
            this.#discard,
          )
          // A classifier, hint or discard hook that throws ends the call with its error.
          .catch((error: unknown) => {
            if (!settled) finish(() => reject(this.#stopped(state, error, scope)));
          });
        clearTimeout(timer);
        timer = undefined;
        // An operation that answers synchronously may already have ended the call.
        if (!settled && state.attempts < this.maxAttempts) schedule(Math.max(clock.now() + this.hedgeDelayMs, notBefore));
      };
      /** Asks the budget for another attempt and starts it; false when refused. */
      const tryHedge = (): boolean => {
        clearTimeout(timer);
        timer = undefined;
        if (budget && !budget.tryAcquire()) {
          this.#budgetExhausted(state.attempts, 'hedge', budget);
          return false;
        }
        this.#stats.hedges++;
        if (this.#events.has('hedge')) {
          this.#events.emit('hedge', { attempt: state.attempts + 1, afterMs: clock.now() - startedAt, inFlight: running });
        }
        launch();
        return true;
      };
      const onOutcome = (outcome: AttemptOutcome<R>): void => {
        running--;
        if (settled || call.aborted) {
          if (outcome.ok) this.#discard?.(outcome.value);
          return;
        }
        const verdict = scope.verdict(outcome.ok, outcome.ok ? outcome.value : outcome.error);
        const retryable = (verdict === undefined || verdict === 'failure' || verdict === 'overload') && retryOn(outcome);
        if (state.last?.ok) this.#discard?.(state.last.value as R);
        state.last = outcome;
        if (!retryable) {
          if (!outcome.ok) {
            giveUp('notRetryable', outcome);
            return;
          }
          budget?.onSuccess();
          this.#stats.successes++;
          finish(() => resolve(outcome.value));
          return;
        }
        budget?.onFailure();
        if (state.attempts >= this.maxAttempts) {
          if (running === 0) giveUp('attempts', outcome);
          return;
        }
        const hintMs = this.#hint(outcome);
        if (hintMs !== undefined) notBefore = Math.max(notBefore, clock.now() + hintMs);
        if (notBefore >= deadlineAt) {
          // No attempt may start before the hint, and none after the deadline: start no more.
          clearTimeout(timer);
          timer = undefined;
          if (running === 0) giveUp('deadline', outcome);
          return;
        }
        if (clock.now() < notBefore) schedule(notBefore);
        else if (!tryHedge() && running === 0) giveUp('budget', outcome);
      };

      launch();
    });
  }

  /**
   * Closes the policy: new calls reject with {@link RetryPolicyClosedError}, calls in
   * flight are aborted with it (their waits and attempts stop), listeners are removed.
   * Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const calls: CallState[] = [];
    for (let state = this.#head; state !== undefined; state = state.next) calls.push(state);
    for (const state of calls) {
      const current = state instanceof RetryCall && !state.firstSettled ? state : state.current;
      current?.abort(new RetryPolicyClosedError());
    }
    this.#expiries.clear();
    if (this.#stamper !== undefined) clearImmediate(this.#stamper);
    this.#stamper = undefined;
    this.#events.clear();
  }

  /** Same as {@link RetryPolicy.close}, for `using` declarations. */
  [Symbol.dispose](): void {
    this.close();
  }

  #track(state: CallState): void {
    const head = this.#head;
    state.next = head;
    if (head !== undefined) head.prev = state;
    this.#head = state;
    this.#inFlight++;
  }

  /** Takes a call off the in-flight list. Idempotent. */
  #untrack(state: CallState): void {
    if (state.prev === undefined && this.#head !== state) return;
    const { prev, next } = state;
    if (prev === undefined) this.#head = next;
    else prev.next = next;
    if (next !== undefined) next.prev = prev;
    state.prev = undefined;
    state.next = undefined;
    this.#inFlight--;
  }

  #budgetExhausted(attempts: number, kind: 'retry' | 'hedge', budget: RetryBudget): void {
    this.#stats.budgetExhausted++;
    if (this.#events.has('budgetExhausted')) this.#events.emit('budgetExhausted', { attempts, kind, budget: budget.stats() });
  }

  #giveUpEvent(state: CallState, reason: GiveUpReason): void {
    this.#stats.giveUps++;
    if (this.#events.has('giveUp')) this.#events.emit('giveUp', { attempts: state.attempts, reason, outcome: state.last });
  }

  /**
   * Ends a call that stopped retrying: emits `giveUp`, returns the last value or throws
   * the matching error. A budget refusal always rejects, a value outcome as `lastValue`.
   */
  #conclude<R>(state: CallState, outcome: AttemptOutcome<unknown>, reason: GiveUpReason): R {
    state.last = outcome;
    this.#giveUpEvent(state, reason);
    if (reason === 'budget') {
      throw outcome.ok
        ? new RetryBudgetExhaustedError(state.attempts, undefined, outcome.value)
        : new RetryBudgetExhaustedError(state.attempts, outcome.error);
    }
    if (outcome.ok) return outcome.value as R;
    if (reason === 'deadline') throw new RetryDeadlineError(this.deadlineMs, state.attempts, outcome.error);
    throw unwrap(outcome.error);
  }

  /**
   * Reports a call stopped by something other than an outcome (the caller's abort,
   * close(), or a classifier, hint or `discard` hook that threw) and returns what to reject with.
   */
  #stopped(state: CallState, error: unknown, scope: CallScope): unknown {
    const aborted = state instanceof RetryCall ? state.callerAborted : scope.aborted;
    this.#giveUpEvent(state, aborted ? 'aborted' : this.#closed ? 'closed' : 'notRetryable');
    return error;
  }

  /** The server's requested delay for an outcome, ms, when there is a usable one. */
  #hint(outcome: AttemptOutcome<T>): number | undefined {
    const hint = this.#delayHint?.(outcome);
    return typeof hint === 'number' && hint >= 0 ? hint : undefined;
  }
}

/**
 * Runs `fn` with retries: a one-off {@link RetryPolicy} for a single call. Share a
 * `RetryPolicy` instead to observe events and stats, and share a budget per upstream
 * through `options.budget` either way.
 *
 * @example
 * ```ts
 * const res = await retry(({ signal }) => fetch(url, { signal }), { maxAttempts: 4, timeoutMs: 1_000 });
 * ```
 * @throws InvalidOptionError when an option is invalid (as a rejection).
 */
export function retry<T>(fn: Attempt<T>, options: RetryOptions<T> & RetryExecuteOptions<T> = {}): Promise<T> {
  return once(options, (policy) => policy.execute(fn, options));
}

/**
 * Runs `fn` hedged (see {@link RetryPolicy.hedge}) with a one-off policy.
 *
 * @example
 * ```ts
 * const replicas = ['http://a', 'http://b'];
 * const res = await hedge(({ attempt, signal }) => fetch(replicas[(attempt - 1) % 2] + path, { signal }), {
 *   hedgeDelayMs: 50, maxAttempts: 2, budget,
 * });
 * ```
 */
export function hedge<T>(fn: Attempt<T>, options: RetryOptions<T> & RetryExecuteOptions<T> = {}): Promise<T> {
  return once(options, (policy) => policy.hedge(fn, options));
}

/** Runs one call on a policy made for it, closed (its timer cleared) when the call ends; bad options reject. */
function once<T>(options: RetryOptions<T>, call: (policy: RetryPolicy<T>) => Promise<T>): Promise<T> {
  let policy: RetryPolicy<T>;
  try {
    policy = new RetryPolicy<T>(options);
  } catch (error) {
    return Promise.reject(error);
  }
  return call(policy).finally(() => policy.close());
}

/** p-retry's `AbortError` means "stop and reject with this"; reject with what it wraps, as p-retry does. */
function unwrap(error: unknown): unknown {
  let cause = error;
  while (cause instanceof PRetryAbortError && cause.originalError instanceof Error) cause = cause.originalError;
  return cause;
}

/**
 * Resolves once `clock` reads `at` or later, and never before: timers may fire up to a
 * millisecond early against `performance.now()`, and a delay beyond the timer limit
 * (a `Retry-After` weeks away, with no deadline) is slept in steps. Sleeps at least
 * once, so a zero delay still yields to the event loop. Rejects with `signal.reason`.
 */
async function sleepUntil(clock: Clock, at: number, scope: CallScope): Promise<void> {
  const signal = scope.signal;
  let left = at - clock.now();
  do {
    await sleep(Math.ceil(Math.max(0, left)), signal);
    left = at - clock.now();
  } while (left > 0);
}

function optionalDuration(option: string, value: number): number {
  return value === Number.POSITIVE_INFINITY ? value : durationMs(option, value, { max: MAX_TIMER_MS });
}
