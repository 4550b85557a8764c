import { availableParallelism } from 'node:os';
import type { ServiceStats } from '@ballast/app-queue';
import { ConcurrencyLimiter, type Permit, ShedError } from '@ballast/backpressure';
import { type Clock, durationMs, func, integer, ratio, systemClock } from '@ballast/common';

/** Options of {@link Admission}. */
export interface AdmissionOptions {
  /** Requests this API server holds at once (waiting for a result or being read); beyond it, 503. @default 256 */
  maxInflight?: number;
  /** Conversions the workers run at once, system-wide; turns queue depth into an expected wait. @default os.availableParallelism() */
  workerSlots?: number;
  /** Shed when the expected queue wait exceeds this, ms, even if the deadline is later: keeps admitted requests fast. @default 400 */
  maxExpectedWaitMs?: number;
  /**
   * A backlog that forms after the queue was short (expected wait within
   * `maxExpectedWaitMs`) for at least this long is, for its first `burstMs`, judged against
   * each request's own deadline instead: a burst — the requests a queue failover held back
   * reaching the queue at once — drains within their deadlines. A backlog standing longer
   * is overload, shed at `maxExpectedWaitMs` until the queue has been short for `burstMs`
   * again. 0: never. @default 2000
   */
  burstMs?: number;
  /** How long a queue depth reading is reused, ms. @default 50 */
  depthCacheMs?: number;
  /**
   * How long a request waits for a fresh depth reading, ms; beyond it (a queue failing
   * over does not answer for seconds), or when the reading fails, the last one stands:
   * the request is admitted or shed on it, not held, and the enqueue rides out the
   * failover. @default 250
   */
  depthWaitMs?: number;
  /** How long a reading of the queue's service-time feed is reused, ms. @default 250 */
  serviceCacheMs?: number;
  /**
   * What a conversion is taken to cost before there is evidence, ms: it stands in for the
   * samples missing below `priorWeight`, and the estimate returns to it when the evidence
   * grows stale. @default 100
   */
  priorServiceMs?: number;
  /** How many samples the prior counts as while there are fewer: one early outlier cannot set the estimate. @default 8 */
  priorWeight?: number;
  /** Evidence older than this starts to fade towards the prior, ms. @default 10000 */
  staleAfterMs?: number;
  /** Half-life of stale evidence, ms: after a quiet spell the estimate halves its distance to the prior each time. @default 10000 */
  staleHalfLifeMs?: number;
  /**
   * Share of the requests the expected-wait check would shed that are admitted anyway, as
   * probes: their conversions give the estimate fresh evidence, so a wrong estimate
   * cannot shed everything forever. The in-flight limit is never probed past. @default 0.05
   */
  probeRatio?: number;
  /** Random source in [0, 1), for the probes. @default Math.random */
  random?: () => number;
  /** Monotonic clock, for the caches and the limiter. @default systemClock */
  clock?: Clock;
  /** Wall clock, epoch ms: the queue stamps its feed with it, so staleness is read against it. @default Date.now */
  now?: () => number;
}

/** Where admission reads the queue's state: its depth, and the service times of recent jobs over every consumer. */
export interface AdmissionSource {
  depth(): Promise<number>;
  serviceStats(): Promise<ServiceStats>;
}

/** A snapshot of an {@link Admission}. */
export interface AdmissionStats {
  /** The conversion time admission expects, ms. */
  serviceMs: number;
  /** Samples behind it (at most the queue's ring). */
  samples: number;
  /** Queue depth last read. */
  depth: number;
  /** Requests admitted as probes, since creation. */
  probes: number;
}

/** Cached async readings: at most one read in flight, reused for `ttlMs`. */
class Reading<T> {
  value: T;
  #at = Number.NEGATIVE_INFINITY;
  #pending: Promise<T> | undefined;
  readonly #read: () => Promise<T>;
  readonly #ttlMs: number;
  readonly #clock: Clock;

  constructor(initial: T, read: () => Promise<T>, ttlMs: number, clock: Clock) {
    this.value = initial;
    this.#read = read;
    this.#ttlMs = ttlMs;
    this.#clock = clock;
  }

  /** A fresh reading if it comes within `waitMs` (a real timer); else, or if it fails, the last one. */
  latest(waitMs: number): Promise<T> {
    const fresh = this.get();
    if (this.#pending === undefined) return fresh;
    return new Promise<T>((resolve) => {
      const timer = setTimeout(() => resolve(this.value), waitMs);
      timer.unref?.();
      const settle = (value: T): void => {
        clearTimeout(timer);
        resolve(value);
      };
      fresh.then(settle, () => settle(this.value));
    });
  }

  get(): Promise<T> {
    if (this.#clock.now() - this.#at < this.#ttlMs) return Promise.resolve(this.value);
    this.#pending ??= this.#read().then(
      (value) => {
        this.value = value;
        this.#at = this.#clock.now();
        this.#pending = undefined;
        return value;
      },
      (error: unknown) => {
        this.#pending = undefined;
        throw error;
      },
    );
    return this.#pending;
  }
}

const NO_SAMPLES: ServiceStats = { samples: 0, meanMs: 0, recentMs: [], medianMs: 0, p90Ms: 0, clampedMeanMs: 0, updatedAt: 0 };

/**
 * Admission at the API's door, before the body is read: a concurrency limit
 * (@ballast/backpressure's `ConcurrencyLimiter`, no waiting) and an expected-wait check —
 * jobs ahead beyond the worker slots × the expected conversion time ÷ worker slots —
 * against the request's deadline. Both shed with a `ShedError` carrying a `Retry-After` hint.
 *
 * The expected conversion time is built to survive a hostile client:
 * - it comes from the queue's feed of recent service times over every worker, sync and
 *   async jobs alike, so every API server sees the same evidence;
 * - each sample is clamped to 4 × the median, so one pathological conversion moves the
 *   estimate by at most 4 × median ÷ samples; while there are fewer than `priorWeight`
 *   samples, the prior fills the gap;
 * - evidence older than `staleAfterMs` fades towards the prior, so a quiet spell forgets
 *   an old slowdown;
 * - `probeRatio` of the requests it would shed are admitted anyway, so a wrong estimate
 *   gets corrected by fresh conversions.
 */
export class Admission implements Disposable {
  readonly limiter: ConcurrencyLimiter;
  readonly #slots: number;
  readonly #maxExpectedWaitMs: number;
  readonly #burstMs: number;
  /** Since when the queue has been short (undefined while it is not), and until when a burst is admitted, clock ms. */
  #shortSince: number | undefined;
  #burstUntil = Number.NEGATIVE_INFINITY;
  readonly #prior: number;
  readonly #priorWeight: number;
  readonly #staleAfterMs: number;
  readonly #staleHalfLifeMs: number;
  readonly #probeRatio: number;
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #now: () => number;
  readonly #depth: Reading<number>;
  readonly #depthWaitMs: number;
  readonly #service: Reading<ServiceStats>;
  #probes = 0;

  constructor(source: AdmissionSource, options: AdmissionOptions = {}) {
    this.#slots = integer('workerSlots', options.workerSlots ?? availableParallelism(), { min: 1 });
    this.#maxExpectedWaitMs = durationMs('maxExpectedWaitMs', options.maxExpectedWaitMs ?? 400);
    this.#burstMs = durationMs('burstMs', options.burstMs ?? 2000);
    this.#prior = durationMs('priorServiceMs', options.priorServiceMs ?? 100, { min: 1 });
    this.#priorWeight = integer('priorWeight', options.priorWeight ?? 8, { min: 0, max: 1000 });
    this.#staleAfterMs = durationMs('staleAfterMs', options.staleAfterMs ?? 10_000);
    this.#staleHalfLifeMs = durationMs('staleHalfLifeMs', options.staleHalfLifeMs ?? 10_000, { min: 1 });
    this.#probeRatio = ratio('probeRatio', options.probeRatio ?? 0.05);
    this.#random = options.random ?? Math.random;
    this.#clock = options.clock ?? systemClock;
    this.#shortSince = this.#clock.now();
    this.#now = func('now', options.now ?? (() => Date.now()));
    const depthCacheMs = durationMs('depthCacheMs', options.depthCacheMs ?? 50);
    this.#depthWaitMs = durationMs('depthWaitMs', options.depthWaitMs ?? 250);
    const serviceCacheMs = durationMs('serviceCacheMs', options.serviceCacheMs ?? 250);
    this.#depth = new Reading(0, () => source.depth(), depthCacheMs, this.#clock);
    this.#service = new Reading(NO_SAMPLES, () => source.serviceStats(), serviceCacheMs, this.#clock);
    this.limiter = new ConcurrencyLimiter({
      name: 'api',
      limit: integer('maxInflight', options.maxInflight ?? 256, { min: 1 }),
      maxQueue: 0,
      retryAfterMs: 1000,
      clock: this.#clock,
    });
  }

  /**
   * Admits a request whose result is due within `deadlineMs`, or throws a `ShedError`.
   * A request that enqueues several `jobs` (a rendition set) is admitted only if its last
   * job can start in time: it waits behind the request's other jobs too. The permit must
   * be released when the request ends.
   */
  admit(deadlineMs: number, jobs = 1): Promise<Permit> {
    return this.admitFitting(deadlineMs, () => jobs);
  }

  /**
   * {@link Admission.admit} for a request that can shrink (a rendition set planned lower):
   * `fit` is told how many jobs the queue has room for now (see {@link Admission.room})
   * and returns how many the request will enqueue; that many are admitted, or shed, with
   * no other request admitted between the reading and the decision.
   */
  async admitFitting(deadlineMs: number, fit: (room: number) => number): Promise<Permit> {
    const permit = this.limiter.tryAcquire();
    if (!permit) throw new ShedError('limit', 1000, `this server already holds ${this.limiter.limit} requests`);
    let expected: number;
    let serviceMs: number;
    let jobs: number;
    let budget: number;
    try {
      const [depth, stats] = await Promise.all([
        this.#depth.latest(this.#depthWaitMs),
        this.#service.get().catch(() => this.#service.value),
      ]);
      serviceMs = this.serviceEstimateMs(stats);
      budget = this.#budget(depth, serviceMs, deadlineMs);
      jobs = fit(this.#room(depth, serviceMs, budget));
      expected = this.expectedWaitMs(depth + jobs - 1, serviceMs);
    } catch (error) {
      permit.release({ ignore: true });
      throw error;
    }
    if (expected > budget) {
      if (this.#probeRatio > 0 && this.#random() < this.#probeRatio) {
        this.#probes++;
      } else {
        permit.release({ ignore: true });
        throw shed(deadlineMs, serviceMs, expected, budget);
      }
    }
    this.#depth.value += jobs; // count ourselves until the next reading
    return permit;
  }

  /**
   * How many jobs a request due within `deadlineMs` could enqueue now without the
   * expected-wait check shedding it (0: not even one), from the same readings as
   * {@link Admission.admit}: what a rendition set is planned down to before it is shed.
   */
  async room(deadlineMs: number): Promise<number> {
    const [depth, stats] = await Promise.all([this.#depth.get(), this.#service.get().catch(() => this.#service.value)]);
    const serviceMs = this.serviceEstimateMs(stats);
    return this.#room(depth, serviceMs, this.#budget(depth, serviceMs, deadlineMs));
  }

  /**
   * How long a request due within `deadlineMs` may wait in the queue, ms: `maxExpectedWaitMs`
   * (or less, as the deadline allows), or the deadline alone in the first `burstMs` of a
   * backlog that formed after a short queue (see `burstMs`). Tracks the queue's spells.
   */
  #budget(depth: number, serviceMs: number, deadlineMs: number): number {
    const now = this.#clock.now();
    if (this.expectedWaitMs(depth, serviceMs) <= this.#maxExpectedWaitMs) {
      this.#shortSince ??= now;
    } else if (this.#shortSince !== undefined) {
      if (this.#burstMs > 0 && now - this.#shortSince >= this.#burstMs) this.#burstUntil = now + this.#burstMs;
      this.#shortSince = undefined;
    }
    const own = deadlineMs - serviceMs;
    return now < this.#burstUntil ? own : Math.min(this.#maxExpectedWaitMs, own);
  }

  /** Jobs that fit in `budget` behind `depth`. */
  #room(depth: number, serviceMs: number, budget: number): number {
    if (budget < 0) return 0;
    // expectedWaitMs(depth + jobs − 1) ≤ budget ⇔ jobs ≤ budget × slots ÷ serviceMs + slots − depth
    return Math.max(0, Math.floor((budget * this.#slots) / serviceMs + this.#slots - depth + 1e-9));
  }

  /**
   * The conversion time to expect from the queue's feed, ms: the mean of the recent
   * samples, each clamped to 4 × their median, the prior standing in for missing samples
   * below `priorWeight`; stale evidence fades towards the prior.
   */
  serviceEstimateMs(stats: ServiceStats): number {
    const samples = stats.recentMs.filter((ms) => Number.isFinite(ms) && ms >= 0);
    const fill = Math.max(0, this.#priorWeight - samples.length);
    const count = samples.length + fill;
    if (count === 0) return this.#prior;
    const sorted = [...samples, ...Array<number>(fill).fill(this.#prior)].sort((a, b) => a - b);
    const cap = 4 * (sorted[Math.floor((count - 1) / 2)] as number);
    let estimate = sorted.reduce((sum, ms) => sum + Math.min(ms, cap), 0) / count;
    const silence = this.#now() - stats.updatedAt;
    if (samples.length > 0 && silence > this.#staleAfterMs) {
      estimate = this.#prior + (estimate - this.#prior) * 2 ** (-(silence - this.#staleAfterMs) / this.#staleHalfLifeMs);
    }
    return estimate;
  }

  /**
   * Expected wait in the queue for a job arriving behind `depth` others (waiting or
   * in progress), ms: nothing while a worker slot is free; otherwise one slot frees up
   * every `serviceMs / slots` on average, and the job needs `depth − slots + 1` of them.
   */
  expectedWaitMs(depth: number, serviceMs: number = this.serviceMs): number {
    if (depth < this.#slots) return 0;
    return ((depth - this.#slots + 1) * serviceMs) / this.#slots;
  }

  /** The expected queue wait beyond which requests are shed, ms (`maxExpectedWaitMs`). */
  get maxExpectedWaitMs(): number {
    return this.#maxExpectedWaitMs;
  }

  /** The conversion time admission expects now, from the last reading of the feed, ms. */
  get serviceMs(): number {
    return this.serviceEstimateMs(this.#service.value);
  }

  stats(): AdmissionStats {
    const feed = this.#service.value;
    return { serviceMs: this.serviceMs, samples: feed.recentMs.length, depth: this.#depth.value, probes: this.#probes };
  }

  [Symbol.dispose](): void {
    this.limiter.close();
  }
}

function shed(deadlineMs: number, serviceMs: number, expected: number, budget: number): ShedError {
  const why =
    budget <= 0
      ? `the deadline of ${deadlineMs} ms leaves no time to wait: a conversion takes about ${Math.round(serviceMs)} ms`
      : `expected queue wait ${Math.round(expected)} ms exceeds the ${Math.round(budget)} ms this request can wait`;
  return new ShedError('queueTimeout', Math.max(1000, expected - budget), why);
}
