import {
  CallScope,
  declareJoinsScope,
  Emitter,
  finiteNumber,
  InvalidOptionError,
  integer,
  type Listener,
  oneOf,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  type Unsubscribe,
} from '@ballast/common';
import Bottleneck from 'bottleneck';
import { shedError } from './errors.ts';
import { type Priority, priorityLevel } from './wait-queue.ts';

/** What bottleneck does with a job that arrives when `highWater` jobs are queued. */
export type OverflowStrategy = 'leak' | 'overflow' | 'overflowPriority' | 'block';

/** Options of {@link OutboundScheduler}. Each maps onto the bottleneck option of the same meaning. */
export interface OutboundSchedulerOptions {
  /** Jobs running at once; `null` for no limit. bottleneck `maxConcurrent`. @default null */
  maxConcurrent?: number | null;
  /** Least time between the starts of two jobs, ms. bottleneck `minTime`. @default 0 */
  minTimeMs?: number;
  /** Jobs (total weight) that may still start; `null` for no reservoir. bottleneck `reservoir`. @default null */
  reservoir?: number | null;
  /** Every `reservoirRefreshIntervalMs` the reservoir is reset to `reservoirRefreshAmount`. @default null */
  reservoirRefreshIntervalMs?: number | null;
  /** The reservoir value after each refresh. @default null */
  reservoirRefreshAmount?: number | null;
  /** Jobs allowed to wait; beyond it `strategy` decides which job is dropped. `null` for no bound. @default null */
  highWater?: number | null;
  /** Which job to drop when `highWater` is reached. @default 'leak' */
  strategy?: OverflowStrategy;
  /** Per-key limiters (see `key` in {@link ScheduleOptions}) idle this long are deleted, ms. @default 300000 */
  keyIdleTimeoutMs?: number;
  /** A name for events. @default 'default' */
  name?: string;
  /**
   * Extra bottleneck options passed through unchanged (e.g. `datastore: 'ioredis'`, `id`).
   * See the README before clustering bottleneck over Redis 7.
   */
  bottleneck?: Bottleneck.ConstructorOptions;
}

/** Options of {@link OutboundScheduler.execute} (and `schedule`). */
export interface ScheduleOptions extends PolicyExecuteOptions {
  /** Higher priorities start first. @default 'normal' */
  priority?: Priority;
  /** Units of `maxConcurrent` and `reservoir` the job uses. @default 1 */
  weight?: number;
  /** Schedule on the limiter of this key (one per tenant, host, API token): same settings, separate budget. */
  key?: string;
  /** Aborting it rejects the call at once with `signal.reason`; if the job has not started it never runs its work. */
  signal?: AbortSignal;
  /** A job running longer than this is failed by bottleneck, ms. */
  expirationMs?: number;
}

/** Events of an {@link OutboundScheduler}. */
export interface OutboundSchedulerEvents {
  /** A queued job was dropped by the overflow strategy or by `close()`. */
  shed: { name: string; key: string | undefined; reason: 'queueFull' | 'closed' };
}

/** A snapshot of an {@link OutboundScheduler}'s default limiter (bottleneck `counts()`). */
export interface OutboundSchedulerStats {
  name: string;
  received: number;
  queued: number;
  running: number;
  executing: number;
  done: number;
  /** Per-key limiters in existence. */
  keys: number;
}

const BOTTLENECK_PRIORITY: readonly number[] = [0, 3, 5, 8];
const STRATEGIES: Record<OverflowStrategy, Bottleneck.Strategy> = {
  leak: Bottleneck.strategy.LEAK,
  overflow: Bottleneck.strategy.OVERFLOW,
  overflowPriority: Bottleneck.strategy.OVERFLOW_PRIORITY,
  block: Bottleneck.strategy.BLOCK,
};
const CLOSED = 'ballast: scheduler closed';

function nullable(option: string, value: number | null | undefined, min: number): number | null {
  return value === null || value === undefined ? null : integer(option, value, { min });
}

/**
 * A scheduler for outbound work built on bottleneck: space calls to a third-party API
 * (`minTimeMs`), cap concurrency, spend and refill a reservoir (quota), order by priority,
 * and keep a separate budget per key. The bottleneck instance is exposed for anything
 * not wrapped here.
 *
 * bottleneck costs milliseconds per job (2–4 ms measured) and tops out at a few hundred
 * jobs per second per limiter (see the README): use it for outbound calls, never on a
 * per-request hot path; admission is {@link ConcurrencyLimiter}'s and {@link TokenBucket}'s job.
 *
 * @example
 * ```ts
 * const github = new OutboundScheduler({ maxConcurrent: 4, minTimeMs: 250, reservoir: 5000, reservoirRefreshAmount: 5000, reservoirRefreshIntervalMs: 3_600_000 });
 * const repo = await github.execute(({ signal }) => fetch(url, { signal }), { signal: request.signal, priority: 'high', key: installationId });
 * ```
 */
export class OutboundScheduler implements Policy, Disposable, AsyncDisposable {
  static {
    declareJoinsScope(OutboundScheduler);
  }

  /** The name given in the options. */
  readonly name: string;
  /** The underlying bottleneck limiter (for calls without a `key`). */
  readonly bottleneck: Bottleneck;
  readonly #options: Bottleneck.ConstructorOptions;
  readonly #keyIdleTimeoutMs: number;
  readonly #events = new Emitter<OutboundSchedulerEvents>();
  #group: Bottleneck.Group | undefined;
  #closed = false;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: OutboundSchedulerOptions = {}) {
    this.name = options.name ?? 'default';
    const strategy = oneOf('strategy', options.strategy ?? 'leak', ['leak', 'overflow', 'overflowPriority', 'block']);
    const refreshInterval = nullable('reservoirRefreshIntervalMs', options.reservoirRefreshIntervalMs, 1);
    const refreshAmount = nullable('reservoirRefreshAmount', options.reservoirRefreshAmount, 0);
    if ((refreshInterval === null) !== (refreshAmount === null)) {
      throw new InvalidOptionError(
        'reservoirRefreshAmount',
        'set together with reservoirRefreshIntervalMs',
        options.reservoirRefreshAmount,
      );
    }
    this.#options = {
      ...options.bottleneck,
      maxConcurrent: nullable('maxConcurrent', options.maxConcurrent, 1),
      minTime: finiteNumber('minTimeMs', options.minTimeMs ?? 0, { min: 0 }),
      reservoir: nullable('reservoir', options.reservoir, 0),
      reservoirRefreshInterval: refreshInterval,
      reservoirRefreshAmount: refreshAmount,
      highWater: nullable('highWater', options.highWater, 0),
      strategy: STRATEGIES[strategy],
    };
    this.#keyIdleTimeoutMs = integer('keyIdleTimeoutMs', options.keyIdleTimeoutMs ?? 300_000, { min: 1 });
    this.bottleneck = this.#watch(new Bottleneck(this.#options), undefined);
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof OutboundSchedulerEvents>(event: K, listener: Listener<OutboundSchedulerEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /**
   * Runs `fn(context)` when the limits allow (the {@link Policy} contract). The caller's
   * `signal` rejects the call at once when it aborts; a job that has not started then
   * never runs its work. bottleneck costs milliseconds per job: keep it off per-request
   * paths (see the README).
   * @throws {ShedError} (rejection) `queueFull` when dropped by the overflow strategy, `closed` after `close()`.
   */
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options: ScheduleOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(shedError('closed'));
    if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('fn', 'a function', fn));
    const scope = CallScope.start(options);
    if (!(scope instanceof CallScope)) return scope;
    const owned = scope === options ? undefined : scope;
    const level = priorityLevel(options.priority ?? 'normal');
    if (level < 0) {
      owned?.release();
      return Promise.reject(new InvalidOptionError('priority', 'one of "critical", "high", "normal", "low"', options.priority));
    }
    const limiter = options.key === undefined ? this.bottleneck : this.#limiterFor(options.key);
    const jobOptions: Bottleneck.JobOptions = {
      priority: BOTTLENECK_PRIORITY[level] as number,
      weight: options.weight ?? 1,
      ...(options.expirationMs === undefined ? {} : { expiration: options.expirationMs }),
    };
    const job = limiter.schedule(jobOptions, async () => {
      // An aborted job that reaches the front does no work.
      if (scope.aborted) throw scope.reason;
      return fn(scope);
    });
    const mapped = job.catch((error: unknown) => {
      if (error instanceof Bottleneck.BottleneckError) {
        throw shedError(error.message === CLOSED || this.#closed ? 'closed' : 'queueFull');
      }
      throw error;
    });
    return new Promise<T>((resolve, reject) => {
      // The caller's abort rejects at once, whatever bottleneck is doing with the job.
      const watch = scope.child();
      watch.onAbort = reject;
      mapped.then(resolve, reject).finally(() => {
        watch.release();
        owned?.release();
      });
    });
  }

  /**
   * Runs `fn` when the limits allow: {@link execute}, kept for code written before it.
   * @throws {ShedError} (rejection) `queueFull` when dropped by the overflow strategy, `closed` after `close()`.
   */
  schedule<T>(fn: () => T | Promise<T>, options: ScheduleOptions = {}): Promise<T> {
    return this.execute(fn, options);
  }

  /** A snapshot of the default limiter's job counts (bottleneck `counts()`). */
  stats(): OutboundSchedulerStats {
    const counts = this.bottleneck.counts();
    return {
      name: this.name,
      received: counts.RECEIVED,
      queued: counts.QUEUED,
      running: counts.RUNNING,
      executing: counts.EXECUTING,
      done: counts.DONE ?? 0,
      keys: this.#group?.keys().length ?? 0,
    };
  }

  /**
   * Drops every waiting job (they reject with `ShedError('closed')`), lets running jobs
   * finish, and stops every timer bottleneck holds. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const limiters = [this.bottleneck, ...(this.#group?.limiters().map((l) => l.limiter) ?? [])];
    await Promise.all(
      limiters.map((l) => l.stop({ dropWaitingJobs: true, dropErrorMessage: CLOSED, enqueueErrorMessage: CLOSED }).catch(() => undefined)),
    );
    await Promise.all(limiters.map((l) => l.disconnect(false)));
    if (this.#group) {
      // bottleneck's Group keeps a cleanup interval that nothing else clears.
      clearInterval((this.#group as unknown as { interval?: ReturnType<typeof setInterval> }).interval);
      await this.#group.disconnect(false);
    }
  }

  [Symbol.dispose](): void {
    void this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #limiterFor(key: string): Bottleneck {
    if (!this.#group) {
      this.#group = new Bottleneck.Group({ ...this.#options, timeout: this.#keyIdleTimeoutMs });
      this.#group.on('created', (limiter, created) => this.#watch(limiter, created));
    }
    return this.#group.key(key);
  }

  #watch(limiter: Bottleneck, key: string | undefined): Bottleneck {
    limiter.on('dropped', () => {
      if (this.#events.has('shed')) this.#events.emit('shed', { name: this.name, key, reason: this.#closed ? 'closed' : 'queueFull' });
    });
    return limiter;
  }
}
