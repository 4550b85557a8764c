import {
  CallScope,
  type CallSink,
  type Clock,
  declareJoinsScope,
  declareStaged,
  durationMs,
  Emitter,
  forward,
  InvalidOptionError,
  integer,
  type Listener,
  oneOf,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  refuse,
  runAsPromise,
  runInside,
  type Stage,
  systemClock,
  type Unsubscribe,
  uncancellableContext,
} from '@ballast/common';
import { type ShedReason, shedError } from './errors.ts';
import { FixedLimit, type LimitAlgorithm } from './limits/limit.ts';
import { VegasLimit } from './limits/vegas.ts';
import { PRIORITIES, type Priority, priorityLevel, type QueueNode, WaitQueue } from './wait-queue.ts';

/**
 * How queued requests are served.
 *
 * - `fifo`: oldest first; each waits up to `queueTimeoutMs`.
 * - `codel`: oldest first, but once a standing queue has formed (the queue has not been
 *   empty for `codel.intervalMs`) a request that has waited longer than `codel.targetMs`
 *   is shed instead of served (checked when a slot frees up, on its timer, and whenever a new
 *   request arrives): under overload the queue holds only fresh work.
 * - `adaptiveLifo`: `codel`, plus newest first while the standing queue lasts (Facebook,
 *   "Fail at Scale"): the requests most likely to still have a waiting client go first.
 */
export type QueueDiscipline = 'fifo' | 'codel' | 'adaptiveLifo';

/** CoDel settings for the `codel` and `adaptiveLifo` disciplines. */
export interface CodelOptions {
  /** Longest wait allowed once a standing queue has formed, ms. @default 5 */
  targetMs?: number;
  /** A queue that has not been empty for this long is a standing queue, ms; also the longest wait without one. @default 100 */
  intervalMs?: number;
}

/** Options of {@link ConcurrencyLimiter}. */
export interface ConcurrencyLimiterOptions {
  /**
   * Requests admitted at once: a fixed number, or an adaptive algorithm
   * ({@link VegasLimit}, {@link Gradient2Limit}, {@link AimdLimit}, or your own). Vegas is the
   * default because its baseline is the lowest latency seen, so sustained overload cannot
   * drag the limit up (Gradient2's long-term average can; see the README's benchmark).
   * @default new VegasLimit()
   */
  limit?: number | LimitAlgorithm;
  /** Requests allowed to wait for a slot; beyond it they are shed at once (`queueFull`). 0 disables queueing. @default 0 */
  maxQueue?: number;
  /** Longest wait in the queue before the request is shed (`queueTimeout`), ms; `Infinity` for no timeout. @default 1000 */
  queueTimeoutMs?: number;
  /** Order in which queued requests are served. @default 'fifo' */
  discipline?: QueueDiscipline;
  /** CoDel settings for the `codel` and `adaptiveLifo` disciplines. */
  codel?: CodelOptions;
  /**
   * Share of the limit each priority may fill, in (0, 1]; the rest stays free for higher
   * priorities, so critical traffic finds a slot while best-effort traffic is shed (even with
   * no queue). With `{ normal: 0.9, low: 0.5 }`, low requests stop being admitted once half the
   * slots are busy, normal ones at 90 %, and the last 10 % is kept for `high` and `critical`.
   * Each share allows at least one slot.
   * @default 1 for every priority
   */
  shares?: Partial<Record<Priority, number>>;
  /** The `retryAfterMs` hint carried by shed errors, ms. @default 1000 */
  retryAfterMs?: number;
  /** A name for events and metrics. @default 'default' */
  name?: string;
  /** Time source. @default systemClock */
  clock?: Clock;
}

/** Options of {@link ConcurrencyLimiter.acquire}. */
export interface AcquireOptions {
  /**
   * Aborting it removes the request from the queue at once; it rejects with `signal.reason`.
   * A function is called only if the request has to wait: pass one when the signal is costly
   * to create (Node's Hono adapter builds a whole `Request` for it), so admitting or shedding
   * at once costs nothing extra.
   */
  signal?: AbortSignal | (() => AbortSignal | undefined);
  /** Queued requests are served highest priority first, and a full queue evicts lower priorities first. @default 'normal' */
  priority?: Priority;
}

/** Per-call options of {@link ConcurrencyLimiter.execute}. */
export interface LimiterExecuteOptions<T = unknown> extends PolicyExecuteOptions<T> {
  /** Cancels the call: while queued it leaves the queue at once; running, its context's signal aborts. */
  signal?: AbortSignal;
  /** Queued calls are served highest priority first, and a full queue evicts lower priorities first. @default 'normal' */
  priority?: Priority;
}

/** How a request admitted by the limiter ended; feeds the adaptive limit. */
export interface ReleaseOptions {
  /** The latency to record, ms. @default time since admission */
  latencyMs?: number;
  /** False when the request failed in a way that signals overload (timeout, 503). @default true */
  ok?: boolean;
  /** True to free the slot without teaching the limit anything (e.g. a 4xx answer). @default false */
  ignore?: boolean;
}

/** Events of a {@link ConcurrencyLimiter}, named after the transition. */
export interface ConcurrencyLimiterEvents {
  /** A request got a slot, at once or after waiting `waitedMs`. */
  admit: { name: string; priority: Priority; inflight: number; limit: number; waitedMs: number };
  /** A request joined the wait queue. */
  queue: { name: string; priority: Priority; queued: number };
  /** A request was turned away. */
  shed: { name: string; priority: Priority; reason: ShedReason; inflight: number; queued: number; waitedMs: number };
  /** The (whole-number) limit moved. */
  limitChanged: { name: string; from: number; to: number };
}

/** A snapshot of a {@link ConcurrencyLimiter}. */
export interface ConcurrencyLimiterStats {
  /** The limiter's name. */
  name: string;
  /** The limit algorithm's name (`fixed`, `vegas`, `gradient2`, `aimd`, or yours). */
  algorithm: string;
  /** The whole-number limit applied now. */
  limit: number;
  /** Requests holding a slot. */
  inflight: number;
  /** Requests waiting for a slot. */
  queued: number;
  /** Queued requests per priority. */
  queuedByPriority: Record<Priority, number>;
  /** Requests admitted since creation. */
  admitted: number;
  /** Shed requests per reason, since creation. */
  shed: Record<ShedReason, number>;
  /** True after `close()`. */
  closed: boolean;
}

/**
 * A slot held by an admitted request. Release it exactly once when the work ends;
 * further calls are ignored. Also releasable with `using`.
 */
export class Permit implements Disposable {
  /** Clock time of admission, ms. */
  readonly startedAt: number;
  /** Requests in flight at admission, this one included. */
  readonly inflight: number;
  #limiter: ConcurrencyLimiter | undefined;

  /** @internal Created by the limiter. */
  constructor(limiter: ConcurrencyLimiter, startedAt: number, inflight: number) {
    this.#limiter = limiter;
    this.startedAt = startedAt;
    this.inflight = inflight;
  }

  /** True until released. */
  get held(): boolean {
    return this.#limiter !== undefined;
  }

  /**
   * Frees the slot and reports how the request went. Idempotent.
   * @throws {InvalidOptionError} when `latencyMs` is not a finite number >= 0; the slot is freed
   * all the same, without teaching the limit anything.
   */
  release(outcome?: ReleaseOptions): void {
    const limiter = this.#limiter;
    if (limiter === undefined) return;
    this.#limiter = undefined;
    const latencyMs = outcome?.latencyMs;
    if (latencyMs !== undefined && !(latencyMs >= 0 && latencyMs < Number.POSITIVE_INFINITY)) {
      releasePermit(limiter, this, IGNORE);
      throw new InvalidOptionError('latencyMs', 'a finite number >= 0', latencyMs);
    }
    releasePermit(limiter, this, outcome);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

const IGNORE: ReleaseOptions = Object.freeze({ ignore: true });
const DROPPED: ReleaseOptions = Object.freeze({ ok: false });
let releasePermit: (limiter: ConcurrencyLimiter, permit: Permit, outcome: ReleaseOptions | undefined) => void;

class Waiter implements QueueNode {
  prev: Waiter | undefined = undefined;
  next: Waiter | undefined = undefined;
  queued = false;
  readonly level: number;
  readonly priority: Priority;
  readonly enqueuedAt: number;
  readonly limiter: ConcurrencyLimiter;
  readonly resolve: (permit: Permit) => void;
  readonly reject: (reason: unknown) => void;
  readonly signal: AbortSignal | undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;

  constructor(
    limiter: ConcurrencyLimiter,
    priority: Priority,
    level: number,
    now: number,
    signal: AbortSignal | undefined,
    resolve: (permit: Permit) => void,
    reject: (reason: unknown) => void,
  ) {
    this.limiter = limiter;
    this.priority = priority;
    this.level = level;
    this.enqueuedAt = now;
    this.signal = signal;
    this.resolve = resolve;
    this.reject = reject;
  }

  /** The abort listener: the waiter object itself, so no closure per request. */
  handleEvent(): void {
    abortWaiter(this);
  }
}

let abortWaiter: (waiter: Waiter) => void;
let expireWaiter: (waiter: Waiter) => void;

/**
 * A slot taken by one call of {@link ConcurrencyLimiter.execute} that runs as a stage of a
 * chain: the sink of the work inside it, which frees the slot when that work settles and
 * passes the outcome on.
 */
class Slot implements CallSink {
  declare readonly limiter: ConcurrencyLimiter;
  declare readonly scope: CallScope | undefined;
  declare readonly owned: CallScope | undefined;
  declare readonly startedAt: number;
  declare readonly inflight: number;
  declare readonly permit: Permit | undefined;
  declare sink: CallSink | undefined;
  declare resolve: (value: unknown) => void;
  declare reject: (reason: unknown) => void;
  declare settled: boolean;
  constructor(
    limiter: ConcurrencyLimiter,
    scope: CallScope | undefined,
    owned: CallScope | undefined,
    startedAt: number,
    inflight: number,
    permit: Permit | undefined,
    sink: CallSink | undefined,
  ) {
    this.limiter = limiter;
    this.scope = scope;
    this.owned = owned;
    this.startedAt = startedAt;
    this.inflight = inflight;
    this.permit = permit;
    this.sink = sink;
    this.resolve = noop;
    this.reject = noop;
    this.settled = false;
  }

  /** The promise `execute` returns, for a call that reports to no sink. */
  promise(): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  settle(ok: boolean, value: unknown): void {
    if (this.settled) return;
    this.settled = true;
    const classifyError = endSlot(this.limiter, this, ok, value);
    this.owned?.release();
    const sink = this.sink;
    if (classifyError !== undefined) {
      ok = false;
      value = classifyError;
    }
    if (sink !== undefined) sink.settle(ok, value);
    else if (ok) this.resolve(value);
    else this.reject(value);
  }
}

const noop = (): void => {};
let endSlot: (limiter: ConcurrencyLimiter, slot: Slot, ok: boolean, value: unknown) => unknown;

const NORMAL = priorityLevel('normal');
const SHED_REASONS: readonly ShedReason[] = ['limit', 'queueFull', 'queueTimeout', 'codel', 'rateLimited', 'throttled', 'closed'];

/**
 * Admission control by concurrency: at most `limit` requests run at once, up to
 * `maxQueue` more wait (by priority, under a queue discipline), and the rest are
 * rejected at once with a {@link ShedError}. The limit can adapt to latency.
 *
 * The admission path is O(1): a counter comparison and one small object when a slot
 * is free; queueing costs one node in an intrusive list.
 *
 * @example
 * ```ts
 * const limiter = new ConcurrencyLimiter({ limit: new VegasLimit({ maxLimit: 200 }), maxQueue: 50, discipline: 'adaptiveLifo' });
 * const permit = await limiter.acquire({ signal: request.signal, priority: 'high' });
 * try {
 *   return await handle(request);
 * } finally {
 *   permit.release();
 * }
 * ```
 */
export class ConcurrencyLimiter implements Policy, Disposable {
  static {
    declareJoinsScope(ConcurrencyLimiter);
  }

  /** The name given in the options. */
  readonly name: string;
  readonly #algorithm: LimitAlgorithm;
  /** False when the algorithm ignores samples (see `LimitAlgorithm.adaptive`). */
  readonly #adaptive: boolean;
  readonly #maxQueue: number;
  readonly #queueTimeoutMs: number;
  readonly #discipline: QueueDiscipline;
  readonly #targetMs: number;
  readonly #intervalMs: number;
  readonly #retryAfterMs: number;
  readonly #clock: Clock;
  readonly #queue = new WaitQueue<Waiter>();
  readonly #events = new Emitter<ConcurrencyLimiterEvents>();
  readonly #shed: Record<ShedReason, number>;
  readonly #shares: readonly number[];
  /** Per priority level: in-flight requests beyond which that priority is not admitted. */
  readonly #caps: number[] = [1, 1, 1, 1];
  #limit = 1;
  #inflight = 0;
  #admitted = 0;
  #lastEmpty: number;
  #closed = false;

  static {
    releasePermit = (limiter, permit, outcome) => limiter.#release(permit, outcome);
    abortWaiter = (waiter) => waiter.limiter.#abort(waiter);
    expireWaiter = (waiter) => waiter.limiter.#expire(waiter);
    endSlot = (limiter, slot, ok, value) => limiter.#endSlot(slot.scope, slot.startedAt, slot.inflight, slot.permit, ok, value);
    declareStaged(ConcurrencyLimiter, function (fn, options, sink, inner) {
      return this.#run(fn, options, sink, inner);
    });
  }

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: ConcurrencyLimiterOptions = {}) {
    const limit = options.limit ?? new VegasLimit();
    if (typeof limit === 'number') this.#algorithm = new FixedLimit(limit);
    else if (limit && typeof limit.update === 'function' && typeof limit.limit === 'number') this.#algorithm = limit;
    else throw new InvalidOptionError('limit', 'a number >= 1 or a LimitAlgorithm', limit);
    this.#adaptive = this.#algorithm.adaptive !== false;
    this.#maxQueue = options.maxQueue === Number.POSITIVE_INFINITY ? Infinity : integer('maxQueue', options.maxQueue ?? 0, { min: 0 });
    this.#queueTimeoutMs =
      options.queueTimeoutMs === Number.POSITIVE_INFINITY ? Infinity : durationMs('queueTimeoutMs', options.queueTimeoutMs ?? 1000);
    this.#discipline = oneOf('discipline', options.discipline ?? 'fifo', ['fifo', 'codel', 'adaptiveLifo']);
    this.#targetMs = durationMs('codel.targetMs', options.codel?.targetMs ?? 5);
    this.#intervalMs = durationMs('codel.intervalMs', options.codel?.intervalMs ?? 100);
    this.#retryAfterMs = durationMs('retryAfterMs', options.retryAfterMs ?? 1000);
    this.name = options.name ?? 'default';
    this.#clock = options.clock ?? systemClock;
    this.#shares = PRIORITIES.map((priority) => {
      const share = options.shares?.[priority] ?? 1;
      if (!(typeof share === 'number' && share > 0 && share <= 1))
        throw new InvalidOptionError(`shares.${priority}`, 'a number > 0 and <= 1', share);
      return share;
    });
    this.#setLimit(wholeLimit(this.#algorithm.limit, 1));
    this.#lastEmpty = this.#clock.now();
    this.#shed = Object.fromEntries(SHED_REASONS.map((r) => [r, 0])) as Record<ShedReason, number>;
  }

  /** The current whole-number limit. */
  get limit(): number {
    return this.#limit;
  }

  /** Requests holding a slot. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.#queue.size;
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof ConcurrencyLimiterEvents>(event: K, listener: Listener<ConcurrencyLimiterEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /**
   * Takes a slot if one is free right now (within the priority's share) and nobody of the same
   * or a higher priority is waiting; never queues.
   * @returns the permit, or `undefined` when the request should be shed.
   * @throws {InvalidOptionError} when `priority` is not a {@link Priority}.
   */
  tryAcquire(priority: Priority = 'normal'): Permit | undefined {
    const level = priorityLevel(priority);
    if (level < 0) throw invalidPriority(priority);
    if (this.#closed || !this.#fits(level)) {
      this.#countShed(priority, this.#closed ? 'closed' : 'limit', 0);
      return undefined;
    }
    return this.#admit(priority, 0);
  }

  /**
   * Takes a slot, waiting in the queue when the limiter is full and the queue has room.
   * @returns a promise of the permit.
   * @throws {ShedError} (rejection) when shed: `limit`, `queueFull`, `queueTimeout`, `codel` or `closed`.
   * Rejects with `signal.reason` when `signal` aborts first.
   */
  acquire(options?: AcquireOptions): Promise<Permit> {
    const signalOption = options?.signal;
    let signal = typeof signalOption === 'function' ? undefined : signalOption;
    const priority = options?.priority ?? 'normal';
    const level = priorityLevel(priority);
    if (level < 0) return Promise.reject(invalidPriority(priority));
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.#closed) return Promise.reject(this.#reject(priority, 'closed', 0));
    if (this.#fits(level)) return Promise.resolve(this.#admit(priority, 0));
    if (this.#maxQueue === 0) return Promise.reject(this.#reject(priority, 'limit', 0));
    const wasEmpty = this.#queue.size === 0;
    // Under a standing queue, requests past the CoDel target are shed now rather than when their
    // timer fires, so they never keep fresh arrivals out of a full queue.
    if (!wasEmpty && this.#discipline !== 'fifo') this.#shedStale(this.#clock.now());
    const victim = this.#queue.size >= this.#maxQueue ? this.#queue.victimBelow(level) : undefined;
    if (this.#queue.size >= this.#maxQueue && !victim) return Promise.reject(this.#reject(priority, 'queueFull', 0));
    if (typeof signalOption === 'function') {
      signal = signalOption();
      if (signal?.aborted) return Promise.reject(signal.reason);
    }
    if (victim) this.#drop(victim, 'queueFull');
    return new Promise<Permit>((resolve, reject) => {
      const now = this.#clock.now();
      if (wasEmpty) this.#lastEmpty = now;
      const waiter = new Waiter(this, priority, level, now, signal, resolve, reject);
      this.#queue.push(waiter);
      let timeout = this.#queueTimeoutMs;
      if (this.#discipline !== 'fifo') {
        timeout = Math.min(timeout, this.#standingQueue(now) ? this.#targetMs : this.#intervalMs);
      }
      if (timeout < Number.POSITIVE_INFINITY) {
        waiter.timer = setTimeout(expireWaiter, timeout, waiter);
        waiter.timer.unref?.();
      }
      signal?.addEventListener('abort', waiter, { once: true });
      if (this.#events.has('queue')) this.#events.emit('queue', { name: this.name, priority, queued: this.#queue.size });
    });
  }

  /**
   * Runs `fn(context)` under a slot (the {@link Policy} contract), waiting in the queue when
   * the limiter is full and the queue has room, and releases the slot when `fn` settles.
   * How it settled teaches the adaptive limit: with a `classify`, `success` is a good
   * sample, `failure` and `overload` a drop, `ignore` nothing; without one, a value is a
   * good sample and a rejection a drop.
   *
   * The admission path allocates no permit: a counter, the clock, and the promise of `fn`.
   * @throws {ShedError} (rejection) when the call is shed: `limit`, `queueFull`, `queueTimeout`, `codel` or `closed`.
   * Rejects with `signal.reason` when the caller's signal aborts while queued.
   */
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: LimiterExecuteOptions<T>): Promise<T> {
    return this.#run(fn, options as LimiterExecuteOptions<never> | undefined, undefined, undefined) as Promise<T>;
  }

  /** One call of {@link execute}, or one call as a stage of a chain (see `StagedPolicy`). */
  #run(
    fn: (context: PolicyContext) => unknown,
    options: LimiterExecuteOptions<never> | undefined,
    sink: CallSink | undefined,
    inner: Stage | undefined,
  ): Promise<unknown> | undefined {
    if (typeof fn !== 'function') return refuse(sink, new InvalidOptionError('fn', 'a function', fn));
    const joined = options instanceof CallScope;
    // A scope handed down carries no priority: normal.
    const priority = joined ? 'normal' : (options?.priority ?? 'normal');
    const level = joined ? NORMAL : priorityLevel(priority);
    if (level < 0) return refuse(sink, invalidPriority(priority));
    let scope: CallScope | undefined;
    let context: PolicyContext = uncancellableContext;
    // A scope handed down is joined as is; only a caller's signal or classifier needs a scope of its own.
    if (joined) {
      scope = options;
      context = scope;
      if (scope.aborted) return refuse(sink, scope.reason);
    } else if (options !== undefined && (options.signal != null || options.classify != null)) {
      try {
        scope = CallScope.from(options);
      } catch (error) {
        return refuse(sink, error);
      }
      context = scope;
      if (scope.aborted) {
        if (scope !== options) scope.release();
        return refuse(sink, scope.reason);
      }
    }
    const owned = scope !== undefined && scope !== options ? scope : undefined;
    if (this.#closed) {
      owned?.release();
      return refuse(sink, this.#reject(priority, 'closed', 0));
    }
    if (this.#fits(level)) {
      const inflight = ++this.#inflight;
      this.#admitted++;
      // A fixed limit learns nothing from latency: no clock read on its path.
      const startedAt = this.#adaptive ? this.#clock.now() : 0;
      if (this.#events.has('admit')) this.#events.emit('admit', { name: this.name, priority, inflight, limit: this.#limit, waitedMs: 0 });
      if (sink === undefined && inner === undefined)
        return this.#endCall(owned, this.#runAdmitted(fn, context, scope, startedAt, inflight));
      const slot = new Slot(this, scope, owned, startedAt, inflight, undefined, sink);
      const promise = sink === undefined ? slot.promise() : undefined;
      // The stages inside share one scope: start one here for a call that came without any.
      runInside(fn, inner, scope ?? CallScope.root(), slot);
      return promise;
    }
    // Has to wait (or be shed): the slow path, through acquire(), with the scope's signal made only if it queues.
    const queued = this.acquire({ signal: scope === undefined ? undefined : () => (scope as CallScope).signal, priority }).then((permit) =>
      inner === undefined
        ? this.#runAdmitted(fn, context, scope, permit.startedAt, permit.inflight, permit)
        : this.#runAdmitted((c) => runAsPromise(fn, inner, c), context, scope, permit.startedAt, permit.inflight, permit),
    );
    return forward(sink, this.#endCall(owned, queued));
  }

  /**
   * Runs `fn` under a slot and releases it when `fn` settles: a rejection counts as a
   * drop (`ok: false`) for the adaptive limit. The same as {@link execute} with a signal
   * that may be given lazily; kept for code written before `execute`.
   * @throws {ShedError} (rejection) when the request is shed.
   */
  async run<T>(fn: () => T | Promise<T>, options?: AcquireOptions): Promise<T> {
    const permit = await this.acquire(options);
    let ok = false;
    try {
      const result = await fn();
      ok = true;
      return result;
    } finally {
      permit.release({ ok });
    }
  }

  /** Runs `fn` in an admitted slot; releases the slot (and teaches the limit) when it settles. */
  #runAdmitted<T>(
    fn: (context: PolicyContext) => T | PromiseLike<T>,
    context: PolicyContext,
    scope: CallScope | undefined,
    startedAt: number,
    inflight: number,
    permit?: Permit,
  ): Promise<T> {
    let result: T | PromiseLike<T>;
    try {
      result = fn(context);
    } catch (error) {
      return Promise.reject(this.#endSlot(scope, startedAt, inflight, permit, false, error) ?? error);
    }
    if (result === null || typeof (result as PromiseLike<T> | undefined)?.then !== 'function') {
      const classifyError = this.#endSlot(scope, startedAt, inflight, permit, true, result);
      return classifyError === undefined ? Promise.resolve(result as T) : Promise.reject(classifyError);
    }
    return Promise.resolve(result).then(
      (value) => {
        const classifyError = this.#endSlot(scope, startedAt, inflight, permit, true, value);
        if (classifyError !== undefined) throw classifyError;
        return value;
      },
      (error: unknown) => {
        throw this.#endSlot(scope, startedAt, inflight, permit, false, error) ?? error;
      },
    );
  }

  /**
   * Frees a slot of {@link execute} with what the outcome teaches the limit. Returns the
   * error of a classifier that threw (the slot is then freed teaching nothing, and the call
   * rejects with that error).
   */
  #endSlot(
    scope: CallScope | undefined,
    startedAt: number,
    inflight: number,
    permit: Permit | undefined,
    ok: boolean,
    value: unknown,
  ): unknown {
    let outcome: ReleaseOptions | undefined = ok ? undefined : DROPPED;
    let classifyError: unknown;
    try {
      const verdict = scope?.verdict(ok, value);
      if (verdict !== undefined) outcome = verdict === 'success' ? undefined : verdict === 'ignore' ? IGNORE : DROPPED;
    } catch (error) {
      classifyError = error;
      outcome = IGNORE;
    }
    if (permit !== undefined) permit.release(outcome);
    else this.#releaseSlot(startedAt, inflight, outcome);
    return classifyError;
  }

  /** Releases a root scope made for one call once the call has settled; a joined scope is the enclosing policy's. */
  #endCall<T>(owned: CallScope | undefined, settled: Promise<T>): Promise<T> {
    if (owned === undefined) return settled;
    return settled.finally(() => owned.release());
  }

  /** A snapshot of the limiter's state and counters. */
  stats(): ConcurrencyLimiterStats {
    const sizes = this.#queue.sizes();
    return {
      name: this.name,
      algorithm: this.#algorithm.name,
      limit: this.#limit,
      inflight: this.#inflight,
      queued: this.#queue.size,
      queuedByPriority: { critical: sizes[0] ?? 0, high: sizes[1] ?? 0, normal: sizes[2] ?? 0, low: sizes[3] ?? 0 },
      admitted: this.#admitted,
      shed: { ...this.#shed },
      closed: this.#closed,
    };
  }

  /**
   * Sheds every queued request (`closed`) and refuses new ones. Requests in flight keep
   * their permits and may still release them. Leaves no timer or listener behind. Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const waiter of this.#queue.drain()) this.#settleShed(waiter, 'closed');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #admit(priority: Priority, waitedMs: number): Permit {
    const inflight = ++this.#inflight;
    this.#admitted++;
    const permit = new Permit(this, this.#clock.now(), inflight);
    if (this.#events.has('admit')) this.#events.emit('admit', { name: this.name, priority, inflight, limit: this.#limit, waitedMs });
    return permit;
  }

  #release(permit: Permit, outcome: ReleaseOptions | undefined): void {
    this.#releaseSlot(permit.startedAt, permit.inflight, outcome);
  }

  #releaseSlot(startedAt: number, inflight: number, outcome: ReleaseOptions | undefined): void {
    this.#inflight--;
    try {
      if (outcome?.ignore !== true && this.#adaptive) {
        const now = this.#clock.now();
        const next = this.#algorithm.update({
          rttMs: outcome?.latencyMs ?? now - startedAt,
          inflight,
          dropped: outcome?.ok === false,
          now,
        });
        const whole = wholeLimit(next, this.#limit);
        if (whole !== this.#limit) {
          const from = this.#limit;
          this.#setLimit(whole);
          if (this.#events.has('limitChanged')) this.#events.emit('limitChanged', { name: this.name, from, to: whole });
        }
      }
    } finally {
      // Whatever the algorithm did, the freed slot goes to the queue.
      this.#drain();
    }
  }

  #setLimit(limit: number): void {
    this.#limit = limit;
    for (let level = 0; level < 4; level++) this.#caps[level] = Math.max(1, Math.floor(limit * (this.#shares[level] as number)));
  }

  /** True when a request of `level` may take a slot now: under its cap, nobody of its priority or higher waiting. */
  #fits(level: number): boolean {
    return this.#inflight < (this.#caps[level] as number) && (this.#queue.size === 0 || this.#queue.sizeUpTo(level) === 0);
  }

  /** Hands free slots to queued requests, shedding those CoDel says are stale. */
  #drain(): void {
    while (this.#queue.size > 0) {
      const now = this.#clock.now();
      const standing = this.#discipline !== 'fifo' && this.#standingQueue(now);
      const waiter = this.#queue.peek(standing && this.#discipline === 'adaptiveLifo') as Waiter;
      if (this.#inflight >= (this.#caps[waiter.level] as number)) return;
      this.#queue.remove(waiter);
      if (this.#queue.size === 0) this.#lastEmpty = now;
      const waitedMs = now - waiter.enqueuedAt;
      if (standing && waitedMs > this.#targetMs) {
        this.#settleShed(waiter, 'codel');
        continue;
      }
      this.#unhook(waiter);
      // Abort-on-dequeue: a request whose caller has gone never takes the slot.
      if (waiter.signal?.aborted) {
        waiter.reject(waiter.signal.reason);
        continue;
      }
      waiter.resolve(this.#admit(waiter.priority, waitedMs));
    }
  }

  /** Sheds every waiter that has waited longer than the CoDel target, while the queue is standing. */
  #shedStale(now: number): void {
    if (!this.#standingQueue(now)) return;
    for (let level = 0; level < 4; level++) {
      // Oldest first within a level: stop at the first fresh one.
      for (let waiter = this.#queue.head(level); waiter && now - waiter.enqueuedAt > this.#targetMs; waiter = this.#queue.head(level)) {
        this.#queue.remove(waiter);
        this.#settleShed(waiter, 'codel');
      }
    }
  }

  #standingQueue(now: number): boolean {
    return this.#queue.size > 0 && now - this.#lastEmpty > this.#intervalMs;
  }

  #abort(waiter: Waiter): void {
    if (!waiter.queued) return;
    this.#queue.remove(waiter);
    if (this.#queue.size === 0) this.#lastEmpty = this.#clock.now();
    this.#unhook(waiter);
    waiter.reject(waiter.signal?.reason);
  }

  #expire(waiter: Waiter): void {
    if (!waiter.queued) return;
    waiter.timer = undefined;
    // A CoDel timeout while a standing queue lasts is CoDel shedding; otherwise a plain timeout.
    const now = this.#clock.now();
    const reason: ShedReason =
      this.#discipline !== 'fifo' && now - waiter.enqueuedAt < this.#queueTimeoutMs && this.#standingQueue(now) ? 'codel' : 'queueTimeout';
    this.#drop(waiter, reason);
  }

  #drop(waiter: Waiter, reason: ShedReason): void {
    this.#queue.remove(waiter);
    if (this.#queue.size === 0) this.#lastEmpty = this.#clock.now();
    this.#settleShed(waiter, reason);
  }

  #settleShed(waiter: Waiter, reason: ShedReason): void {
    this.#unhook(waiter);
    waiter.reject(this.#reject(waiter.priority, reason, this.#clock.now() - waiter.enqueuedAt));
  }

  #unhook(waiter: Waiter): void {
    if (waiter.timer !== undefined) {
      clearTimeout(waiter.timer);
      waiter.timer = undefined;
    }
    waiter.signal?.removeEventListener('abort', waiter);
  }

  #reject(priority: Priority, reason: ShedReason, waitedMs: number): Error {
    this.#countShed(priority, reason, waitedMs);
    return shedError(reason, this.#retryAfterMs);
  }

  #countShed(priority: Priority, reason: ShedReason, waitedMs: number): void {
    this.#shed[reason]++;
    if (this.#events.has('shed')) {
      this.#events.emit('shed', { name: this.name, priority, reason, inflight: this.#inflight, queued: this.#queue.size, waitedMs });
    }
  }
}

function invalidPriority(priority: unknown): InvalidOptionError {
  return new InvalidOptionError('priority', 'one of "critical", "high", "normal", "low"', priority);
}

/** The whole-number limit to apply; a non-number (a broken custom algorithm) keeps `current`. */
function wholeLimit(limit: number, current: number): number {
  if (typeof limit !== 'number' || Number.isNaN(limit)) return current;
  return Math.max(1, Math.floor(limit));
}
