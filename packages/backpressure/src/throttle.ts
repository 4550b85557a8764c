import {
  CallScope,
  type Clock,
  declareJoinsScope,
  durationMs,
  Emitter,
  finiteNumber,
  InvalidOptionError,
  integer,
  type Listener,
  type Policy,
  type PolicyContext,
  type PolicyExecuteOptions,
  RollingWindow,
  systemClock,
  type Unsubscribe,
  uncancellableContext,
  type Verdict,
} from '@ballast/common';
import { isShedError, shedError } from './errors.ts';

const REQUESTS = 0;
const ACCEPTS = 1;

/** Options of {@link AdaptiveThrottle}. */
export interface AdaptiveThrottleOptions {
  /**
   * The multiplier K: the backend may reject up to `1 − 1/K` of requests before the client
   * starts rejecting locally. Lower is more aggressive; Google uses 2. @default 2
   */
  k?: number;
  /** The window over which requests and accepts are counted, ms. @default 120000 */
  windowMs?: number;
  /** Slots of the rolling window. @default 12 */
  buckets?: number;
  /** Decides whether an error thrown by `fn` in {@link AdaptiveThrottle.run} is an overload rejection by the backend. @default a ShedError, or an error with `status` 429 or 503 */
  isRejection?: (error: unknown) => boolean;
  /** A name for events. @default 'default' */
  name?: string;
  /** Random source in [0, 1). @default Math.random */
  random?: () => number;
  /** Time source. @default systemClock */
  clock?: Clock;
}

/** Events of an {@link AdaptiveThrottle}. */
export interface AdaptiveThrottleEvents {
  /** A request was rejected locally, without reaching the backend. */
  shed: { name: string; reason: 'throttled'; probability: number };
}

/** A snapshot of an {@link AdaptiveThrottle}. */
export interface AdaptiveThrottleStats {
  name: string;
  /** Requests attempted in the window, including those rejected locally. */
  requests: number;
  /** Requests the backend accepted in the window. */
  accepts: number;
  /** The current local rejection probability. */
  probability: number;
  /** Requests let through to the backend since creation. */
  sent: number;
  /** Requests rejected locally since creation. */
  throttled: number;
}

function defaultIsRejection(error: unknown): boolean {
  if (isShedError(error)) return true;
  const status =
    (error as { status?: unknown; statusCode?: unknown } | null)?.status ?? (error as { statusCode?: unknown } | null)?.statusCode;
  return status === 429 || status === 503;
}

/**
 * Client-side adaptive throttling (Google SRE book, "Handling Overload"): each client
 * tracks, over the last two minutes, the requests it attempted and those the backend
 * accepted, and rejects new requests locally with probability
 * `max(0, (requests − K × accepts) / (requests + 1))`. An overloaded backend then stops
 * receiving requests it would only reject, and traffic resumes as it recovers.
 *
 * @example
 * ```ts
 * const throttle = new AdaptiveThrottle({ k: 2 });
 * const body = await throttle.execute(({ signal }) => fetchJson(url, { signal })); // throws ShedError('throttled') when rejected locally
 * ```
 */
export class AdaptiveThrottle implements Policy, Disposable {
  static {
    declareJoinsScope(AdaptiveThrottle);
  }

  /** The name given in the options. */
  readonly name: string;
  readonly #k: number;
  readonly #window: RollingWindow;
  readonly #isRejection: (error: unknown) => boolean;
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #retryAfterMs: number;
  readonly #events = new Emitter<AdaptiveThrottleEvents>();
  #sent = 0;
  #throttled = 0;

  /** @throws {InvalidOptionError} naming the first invalid option. */
  constructor(options: AdaptiveThrottleOptions = {}) {
    this.#k = finiteNumber('k', options.k ?? 2, { min: 1 });
    const windowMs = durationMs('windowMs', options.windowMs ?? 120_000, { min: 1 });
    const buckets = integer('buckets', options.buckets ?? 12, { min: 1, max: 10_000 });
    this.#window = new RollingWindow(windowMs, buckets, 2);
    this.#retryAfterMs = windowMs / buckets;
    this.#isRejection = options.isRejection ?? defaultIsRejection;
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? systemClock;
    this.name = options.name ?? 'default';
  }

  /** Subscribes to an event; returns the unsubscribe function. */
  on<K extends keyof AdaptiveThrottleEvents>(event: K, listener: Listener<AdaptiveThrottleEvents, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** The probability that the next request is rejected locally. */
  probability(now: number = this.#clock.now()): number {
    const requests = this.#window.total(REQUESTS, now);
    const accepts = this.#window.total(ACCEPTS, now);
    return Math.max(0, (requests - this.#k * accepts) / (requests + 1));
  }

  /**
   * Counts a request and decides whether to send it. When it returns true, report the
   * backend's answer with {@link record}.
   */
  tryAcquire(): boolean {
    const now = this.#clock.now();
    const p = this.probability(now);
    this.#window.add(REQUESTS, now);
    return this.#decide(p);
  }

  /** Reports whether the backend accepted a request sent after {@link tryAcquire}. */
  record(accepted: boolean): void {
    if (accepted) this.#window.add(ACCEPTS, this.#clock.now());
  }

  /**
   * Decides whether to send a request, like {@link tryAcquire}, without counting it: for
   * callers that count only the requests the backend answered ({@link recordAnswer}).
   * Requests still in flight (a slow upload), and requests turned away here, then never
   * raise the rejection probability by themselves: only the backend's answers move it.
   */
  admit(): boolean {
    return this.#decide(this.probability());
  }

  /** Sends with probability `1 − p`, counting the decision. */
  #decide(p: number): boolean {
    if (p > 0 && this.#random() < p) {
      this.#throttled++;
      if (this.#events.has('shed')) this.#events.emit('shed', { name: this.name, reason: 'throttled', probability: p });
      return false;
    }
    this.#sent++;
    return true;
  }

  /** Counts one request the backend answered, sent after {@link admit}, and whether it accepted it. */
  recordAnswer(accepted: boolean): void {
    const now = this.#clock.now();
    this.#window.add(REQUESTS, now);
    if (accepted) this.#window.add(ACCEPTS, now);
  }

  /**
   * Sends `fn(context)` unless throttled (the {@link Policy} contract), and records
   * whether the backend accepted it: with a `classify`, only an `overload` verdict is a
   * rejection; without one, a result is accepted and an error is a rejection when
   * `isRejection` says so (the backend answered otherwise).
   * @throws {ShedError} `throttled` (rejection) when rejected locally; otherwise whatever `fn` throws.
   */
  execute<T>(fn: (context: PolicyContext) => T | PromiseLike<T>, options?: PolicyExecuteOptions<T>): Promise<T> {
    if (typeof fn !== 'function') return Promise.reject(new InvalidOptionError('fn', 'a function', fn));
    let scope: CallScope | undefined;
    if (options !== undefined && (options.signal != null || options.classify != null || CallScope.isScope(options))) {
      try {
        scope = CallScope.from(options);
      } catch (error) {
        return Promise.reject(error);
      }
      if (scope.aborted) return this.#endCall(scope, options, Promise.reject(scope.reason));
    }
    if (!this.tryAcquire()) return this.#endCall(scope, options, Promise.reject(shedError('throttled', this.#retryAfterMs)));
    let result: T | PromiseLike<T>;
    try {
      result = fn(scope ?? uncancellableContext);
    } catch (error) {
      return this.#endCall(scope, options, Promise.reject(this.#judge(scope, false, error) ?? error));
    }
    const settled = Promise.resolve(result).then(
      (value) => {
        const classifyError = this.#judge(scope, true, value);
        if (classifyError !== undefined) throw classifyError;
        return value;
      },
      (error: unknown) => {
        throw this.#judge(scope, false, error) ?? error;
      },
    );
    return this.#endCall(scope, options, settled);
  }

  /**
   * Sends `fn` unless throttled: {@link execute}, kept for code written before it.
   * @throws {ShedError} `throttled` when rejected locally; otherwise whatever `fn` throws.
   */
  run<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.execute(fn);
  }

  /** Records how a sent request ended; returns the error of a classifier that threw (nothing is recorded then). */
  #judge(scope: CallScope | undefined, ok: boolean, value: unknown): unknown {
    let verdict: Verdict | undefined;
    try {
      verdict = scope?.verdict(ok, value);
    } catch (error) {
      return error;
    }
    this.record(verdict === undefined ? ok || !this.#isRejection(value) : verdict !== 'overload');
    return undefined;
  }

  #endCall<T>(scope: CallScope | undefined, options: unknown, settled: Promise<T>): Promise<T> {
    if (scope === undefined || scope === options) return settled;
    return settled.finally(() => scope.release());
  }

  /** A snapshot: window counts, the current probability, counters since creation. */
  stats(): AdaptiveThrottleStats {
    const now = this.#clock.now();
    return {
      name: this.name,
      requests: this.#window.total(REQUESTS, now),
      accepts: this.#window.total(ACCEPTS, now),
      probability: this.probability(now),
      sent: this.#sent,
      throttled: this.#throttled,
    };
  }

  /** Forgets the window and every listener. Holds no timer. */
  close(): void {
    this.#window.reset();
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
