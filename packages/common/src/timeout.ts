import { TimeoutError } from './abort.ts';
import { type Clock, systemClock } from './clock.ts';
import { type DeadlineEntry, DeadlineList } from './deadline-list.ts';
import { InvalidOptionError, PolicyClosedError, withoutStack } from './errors.ts';
import { Emitter, type Listener, type Unsubscribe } from './events.ts';
import { CallScope, declareJoinsScope, type Policy, type PolicyContext, type PolicyExecuteOptions } from './policy.ts';
import { type CallSink, declareStaged, refuse, runInside, type Stage, StageCall } from './stage.ts';
import { durationMs } from './validate.ts';

/** Options of a {@link TimeoutPolicy}. */
export interface TimeoutPolicyOptions {
  /** Time limit of each call, ms (at most 2^31 - 1). */
  timeoutMs: number;
  /** Time source; must follow the timers (fake timers do). @default systemClock */
  clock?: Clock;
}

/** Events of a {@link TimeoutPolicy}. */
export interface TimeoutPolicyEvents {
  /** A call exceeded `timeoutMs`: its signal aborted with a `TimeoutError` and it rejected. */
  timeout: { timeoutMs: number };
}

/** A snapshot of a {@link TimeoutPolicy}'s counters. */
export interface TimeoutPolicyStats {
  timeoutMs: number;
  /** Calls started since creation. */
  calls: number;
  /** Calls that timed out since creation. */
  timeouts: number;
  /** Calls running now. */
  inFlight: number;
}

/**
 * One call under a timeout: the scope its work runs in (so the call and its context are
 * one object), the sink of that work, and its entry on the policy's shared timer.
 */
class TimedCall extends StageCall implements DeadlineEntry {
  declare readonly policy: TimeoutPolicy;
  declare deadline: number;
  declare prev: DeadlineEntry | undefined;
  declare next: DeadlineEntry | undefined;
  declare settled: boolean;
  /** False while the call waits, on the policy's pending list, for its start to be stamped (see `TimeoutPolicy.#stampPending`). */
  declare stamped: boolean;
  constructor(policy: TimeoutPolicy, options: PolicyExecuteOptions<never> | undefined, joined: CallScope | undefined) {
    super(options, joined);
    this.policy = policy;
    this.deadline = Number.POSITIVE_INFINITY;
    this.prev = undefined;
    this.next = undefined;
    this.settled = false;
    this.stamped = true;
  }

  settle(ok: boolean, value: unknown): void {
    settleTimed(this, ok, value);
  }

  protected override aborting(reason: unknown): void {
    settleTimed(this, false, reason);
  }
}

let settleTimed: (call: TimedCall, ok: boolean, value: unknown) => void;

/**
 * A time limit on each call: when `timeoutMs` passes, the call's signal aborts with a
 * {@link TimeoutError} and the call rejects with it at once, even if the work ignores its
 * signal. Every call of one policy has the same limit, so all of them share one timer
 * (no timer is set or cleared per call). The limit counts from the call's start as an
 * enclosing policy read it on the same clock, or else from the end of the event-loop turn
 * the call started in (one clock reading per turn, none for a call that ends within it).
 * The caller's signal cancels a call: it rejects with `signal.reason`.
 *
 * @example
 * ```ts
 * const timeout = new TimeoutPolicy({ timeoutMs: 2_000 });
 * const res = await timeout.execute(({ signal }) => fetch(url, { signal }), { signal: request.signal });
 * ```
 */
export class TimeoutPolicy implements Policy, Disposable {
  static {
    declareJoinsScope(TimeoutPolicy);
    settleTimed = (call, ok, value) => call.policy.#settle(call, ok, value);
    declareStaged(TimeoutPolicy, function (fn, options, sink, inner) {
      return this.#run(fn, options, sink, inner);
    });
  }

  /** The time limit of each call, ms. */
  readonly timeoutMs: number;
  readonly #clock: Clock;
  readonly #calls: DeadlineList<TimedCall>;
  /** Calls whose start is not stamped yet (no deadline, no timer), and the immediate that stamps them. */
  readonly #pending: DeadlineList<TimedCall>;
  #stamper: ReturnType<typeof setImmediate> | undefined = undefined;
  readonly #events = new Emitter<TimeoutPolicyEvents>();
  #started = 0;
  #timeouts = 0;
  #closed = false;

  /** @throws {InvalidOptionError} when `timeoutMs` is not a duration >= 1 ms, or `clock` not a Clock. */
  constructor(options: TimeoutPolicyOptions | number) {
    const resolved = typeof options === 'number' ? { timeoutMs: options } : options;
    if (resolved === null || typeof resolved !== 'object') throw new InvalidOptionError('options', 'an object or a number of ms', options);
    this.timeoutMs = durationMs('timeoutMs', resolved.timeoutMs, { min: 1 });
    this.#clock = resolved.clock ?? systemClock;
    if (typeof this.#clock?.now !== 'function') throw new InvalidOptionError('clock', 'a Clock (an object with now())', resolved.clock);
    // Referenced while a call waits: a call hanging on nothing still times out.
    this.#calls = new DeadlineList<TimedCall>(this.#clock, (call) => this.#expire(call), { unref: false });
    // Its entries have no deadline: it never sets a timer.
    this.#pending = new DeadlineList<TimedCall>(this.#clock, () => {});
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof TimeoutPolicyEvents>(event: K, listener: Listener<TimeoutPolicyEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /**
   * Runs `fn` with a signal that aborts after `timeoutMs`.
   * @returns what `fn` returns.
   * @throws {TimeoutError} (rejects) when the limit passes first.
   * @throws {PolicyClosedError} (rejects) after `close()`.
   * Rejects with `signal.reason` when the caller's signal aborts first.
   */
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    return this.#run(fn, options as PolicyExecuteOptions<never> | undefined, undefined, undefined) as Promise<T>;
  }

  /** Runs one call as a stage of a chain, or for {@link execute} (see {@link StagedPolicy}). */
  #run(
    fn: (context: PolicyContext) => unknown,
    options: PolicyExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined {
    if (this.#closed) return refuse(sink, new PolicyClosedError('timeout'));
    if (typeof fn !== 'function') return refuse(sink, new InvalidOptionError('fn', 'a function', fn));
    const joined = CallScope.isScope(options) ? options : undefined;
    if (joined === undefined && options !== undefined) {
      try {
        CallScope.check(options);
      } catch (error) {
        return refuse(sink, error);
      }
    }
    if (joined !== undefined ? joined.aborted : options?.signal?.aborted) {
      return refuse(sink, joined !== undefined ? joined.reason : options?.signal?.reason);
    }
    this.#started++;
    const call = new TimedCall(this, options, joined);
    const promise = call.attach(sink);
    if (joined !== undefined && joined.startClock === this.#clock) {
      // An enclosing policy read the clock as this call started: its reading is this call's start.
      call.deadline = call.stampStart(this.#clock, joined) + this.timeoutMs;
      this.#calls.add(call);
    } else {
      // No reading to reuse: the start is stamped at the end of this event-loop turn (see #stampPending).
      call.stamped = false;
      this.#pending.add(call);
      this.#stamper ??= setImmediate(this.#stampPending);
    }
    call.watch();
    if (!call.settled) runInside(fn, inner, call, call);
    return promise;
  }

  /** A snapshot of the counters. */
  stats(): TimeoutPolicyStats {
    return { timeoutMs: this.timeoutMs, calls: this.#started, timeouts: this.#timeouts, inFlight: this.#calls.size + this.#pending.size };
  }

  /**
   * Stamps the calls that started in this event-loop turn with no clock reading of an
   * enclosing policy to reuse, and are still running: their time limit counts from now,
   * the end of that turn (never earlier than their start, and within one turn of it). A
   * call that ended meanwhile, as most fast calls do, read no clock. Runs once per turn
   * with calls to stamp (an immediate), not once per call.
   */
  readonly #stampPending = (): void => {
    this.#stamper = undefined;
    if (this.#pending.size === 0) return;
    const deadline = this.#clock.now() + this.timeoutMs;
    for (const call of this.#pending.entries()) {
      this.#pending.remove(call);
      call.stamped = true;
      call.deadline = deadline;
      this.#calls.add(call);
    }
  };

  /**
   * Refuses new calls with {@link PolicyClosedError}, aborts the calls in flight with it
   * (they reject at once), clears the timer and removes listeners. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#calls.stop();
    if (this.#stamper !== undefined) clearImmediate(this.#stamper);
    this.#stamper = undefined;
    for (const call of [...this.#calls.entries(), ...this.#pending.entries()]) {
      (call.stamped ? this.#calls : this.#pending).remove(call);
      const error = new PolicyClosedError('timeout');
      this.#settle(call, false, error, true);
      call.abort(error);
    }
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #expire(call: TimedCall): void {
    if (call.settled) return;
    this.#timeouts++;
    const error = withoutStack(() => new TimeoutError(this.timeoutMs));
    this.#settle(call, false, error, true);
    if (this.#events.has('timeout')) this.#events.emit('timeout', { timeoutMs: this.timeoutMs });
    // After settling, so whatever the work does on abort cannot change the outcome.
    call.abort(error);
  }

  /** `removed`: the call is already off the timer list (it expired, or close() took it off). */
  #settle(call: TimedCall, ok: boolean, value: unknown, removed = false): void {
    if (call.settled) return;
    call.settled = true;
    if (!removed) (call.stamped ? this.#calls : this.#pending).remove(call);
    call.release();
    call.report(ok, value);
  }
}
