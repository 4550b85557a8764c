import { EventEmitter } from 'node:events';
import {
  type Clock,
  durationMs,
  Emitter,
  InvalidOptionError,
  integer,
  type Listener,
  MAX_TIMER_MS,
  nonEmptyString,
  systemClock,
  type Unsubscribe,
} from '@ballast/common';
import { CircuitBreaker } from './circuit-breaker.ts';
import { BreakerDisposedError } from './errors.ts';
import type { OpossumOptions } from './opossum-types.ts';
import type { CircuitBreakerOptions } from './options.ts';
import type { CircuitBreakerEvents, CircuitBreakerSnapshot, CircuitState } from './state.ts';

/** Options of a {@link BreakerRegistry}. */
export interface BreakerRegistryOptions<R = unknown> {
  /**
   * Options of every breaker, or a function of the key returning them. The breaker's
   * `name` defaults to its key.
   * @default {}
   */
  breaker?: CircuitBreakerOptions<R> | ((key: string) => CircuitBreakerOptions<R>);
  /**
   * Most breakers held at once. Creating one more evicts the least recently used
   * breaker that is closed and idle (no call in flight), else the least recently used.
   * @default 1000
   */
  maxBreakers?: number;
  /**
   * A breaker unused for this long, in ms, is evicted, unless it has calls in flight or
   * is open (an open circuit is kept so that a dependency that was failing is not
   * called again at full rate). An open circuit that reopened only because its
   * half-open period expired with no trial call is evicted too: it holds no news.
   * `0` turns idle eviction off.
   * @default 600000 (10 minutes)
   */
  idleTimeoutMs?: number;
  /** States to restore, as returned by `toJSON()`; applied when each key is first used. */
  initialState?: Record<string, CircuitBreakerSnapshot>;
  /** Time source for idleness; also the breakers' clock unless their options set one. @default systemClock */
  clock?: Clock;
}

/** Why a breaker left the registry. */
export type EvictionReason = 'capacity' | 'idle' | 'delete';

/** Typed events of a {@link BreakerRegistry}. */
export interface BreakerRegistryEvents<R = unknown> {
  /** A breaker was created for `key`. */
  create: { key: string; breaker: CircuitBreaker<R> };
  /** A breaker was evicted and closed. */
  evict: { key: string; breaker: CircuitBreaker<R>; reason: EvictionReason };
  /** The breaker of `key` opened. */
  open: CircuitBreakerEvents['open'] & { key: string };
  /** The breaker of `key` went half-open. */
  halfOpen: CircuitBreakerEvents['halfOpen'] & { key: string };
  /** The breaker of `key` closed. */
  close: CircuitBreakerEvents['close'] & { key: string };
}

/** A snapshot of a registry, from `stats()`. */
export interface BreakerRegistryStats {
  size: number;
  maxBreakers: number;
  created: number;
  evicted: Record<EvictionReason, number>;
  /** Breakers by current state. */
  states: Record<CircuitState, number>;
}

interface Entry<R> {
  breaker: CircuitBreaker<R>;
  lastUsed: number;
  /** Open only because a half-open period passed without enough trials: no reason to keep it. */
  staleOpen: boolean;
  unsubscribe: Unsubscribe[];
}

/** One shared timer rotating the opossum windows of every breaker with the same bucket length. */
interface Rotation {
  controller: EventEmitter;
  timer: ReturnType<typeof setInterval>;
}

/**
 * Breakers by key (an upstream, a route, a tenant), created on first use and kept, so
 * that no breaker is ever built per request. The number of breakers is capped (LRU
 * eviction) and idle breakers are evicted, so per-tenant keys cannot grow memory
 * without bound. All breakers with the same window share one bucket-rotation timer
 * (opossum's `rotateBucketController`) instead of one timer each.
 *
 * @example
 * ```ts
 * const breakers = new BreakerRegistry({ breaker: { timeoutMs: 2_000 }, maxBreakers: 500 });
 * const res = await breakers.get(upstream.origin).execute(({ signal }) => fetch(url, { signal }));
 * ```
 * @throws {InvalidOptionError} when an option is invalid.
 */
export class BreakerRegistry<R = unknown> implements Disposable, Iterable<[string, CircuitBreaker<R>]> {
  /** Most breakers held at once. */
  readonly maxBreakers: number;
  /** Idle time after which a breaker is evicted, in ms (0: never). */
  readonly idleTimeoutMs: number;
  readonly #breakerOptions: (key: string) => CircuitBreakerOptions<R>;
  readonly #clock: Clock;
  readonly #entries = new Map<string, Entry<R>>();
  readonly #saved = new Map<string, CircuitBreakerSnapshot>();
  readonly #events = new Emitter<BreakerRegistryEvents<R>>();
  readonly #rotations = new Map<number, Rotation>();
  readonly #evicted: Record<EvictionReason, number> = { capacity: 0, idle: 0, delete: 0 };
  #created = 0;
  #lastKey: string | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;
  #disposed = false;

  constructor(options: BreakerRegistryOptions<R> = {}) {
    this.maxBreakers = integer('maxBreakers', options.maxBreakers ?? 1_000, { min: 1 });
    this.idleTimeoutMs = durationMs('idleTimeoutMs', options.idleTimeoutMs ?? 600_000);
    this.#clock = options.clock ?? systemClock;
    const breaker = options.breaker ?? {};
    if (typeof breaker === 'function') this.#breakerOptions = breaker;
    else if (breaker !== null && typeof breaker === 'object') this.#breakerOptions = () => breaker;
    else throw new InvalidOptionError('breaker', 'breaker options or a function of the key returning them', breaker);
    for (const [key, state] of Object.entries(options.initialState ?? {})) {
      if (this.#saved.size >= this.maxBreakers) break;
      this.#saved.set(key, state);
    }
  }

  /** Breakers held now. */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The breaker of `key`, created on first use; marks it most recently used.
   * @throws {BreakerDisposedError} after `close()`.
   * @throws {InvalidOptionError} when `key` is not a non-empty string.
   */
  get(key: string): CircuitBreaker<R> {
    const entry = this.#entries.get(key);
    if (entry !== undefined) {
      entry.lastUsed = this.#clock.now();
      if (this.#lastKey !== key) {
        // Map order is recency order: move the key to the end.
        this.#entries.delete(key);
        this.#entries.set(key, entry);
        this.#lastKey = key;
      }
      return entry.breaker;
    }
    if (this.#disposed) throw new BreakerDisposedError('registry');
    return this.#create(nonEmptyString('key', key));
  }

  /** The breaker of `key` if there is one, without creating it or marking it used. */
  peek(key: string): CircuitBreaker<R> | undefined {
    return this.#entries.get(key)?.breaker;
  }

  /** Evicts and closes the breaker of `key`; returns whether there was one. */
  delete(key: string): boolean {
    const entry = this.#entries.get(key);
    if (entry === undefined) return false;
    this.#evict(key, entry, 'delete');
    return true;
  }

  /** Subscribes to a typed event; returns the unsubscribe function. */
  on<K extends keyof BreakerRegistryEvents<R>>(event: K, listener: Listener<BreakerRegistryEvents<R>, K>): Unsubscribe {
    return this.#events.on(event, listener);
  }

  /** `[key, breaker]` pairs, least recently used first. */
  entries(): IterableIterator<[string, CircuitBreaker<R>]> {
    const entries = this.#entries.entries();
    return (function* () {
      for (const [key, entry] of entries) yield [key, entry.breaker] as [string, CircuitBreaker<R>];
    })();
  }

  [Symbol.iterator](): IterableIterator<[string, CircuitBreaker<R>]> {
    return this.entries();
  }

  /** Counts of breakers, creations, evictions and states. */
  stats(): BreakerRegistryStats {
    const states: Record<CircuitState, number> = { closed: 0, open: 0, halfOpen: 0 };
    for (const { breaker } of this.#entries.values()) states[breaker.state]++;
    return {
      size: this.#entries.size,
      maxBreakers: this.maxBreakers,
      created: this.#created,
      evicted: { ...this.#evicted },
      states,
    };
  }

  /**
   * The state of every breaker that is not closed (closed is what a new breaker starts
   * in), plus restored states not yet used; give it back as `initialState`.
   */
  toJSON(): Record<string, CircuitBreakerSnapshot> {
    const out: Record<string, CircuitBreakerSnapshot> = Object.fromEntries(this.#saved);
    for (const [key, { breaker }] of this.#entries) if (breaker.state !== 'closed') out[key] = breaker.toJSON();
    return out;
  }

  /** Closes every breaker and releases every timer. Later `get()` calls throw. Idempotent. */
  close(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const [key, entry] of [...this.#entries]) this.#evict(key, entry, 'delete');
    this.#stopSweeper();
    this.#events.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #create(key: string): CircuitBreaker<R> {
    if (this.#entries.size >= this.maxBreakers) this.#evictForRoom();
    const given = this.#breakerOptions(key);
    const options: CircuitBreakerOptions<R> = { clock: this.#clock, ...given };
    if (options.name === undefined) options.name = key;
    const saved = this.#saved.get(key);
    if (saved !== undefined && options.initialState === undefined) options.initialState = saved;
    this.#saved.delete(key);
    // opossum's options as the breaker will read them (grouped, or at the top level under their old names).
    const opossum = { ...(given as Record<string, unknown>), ...given.opossum } as OpossumOptions;
    if (opossum.rotateBucketController === undefined) {
      const shared = this.#rotation(opossum.rollingCountTimeout ?? 10_000, opossum.rollingCountBuckets ?? 10);
      if (shared !== undefined) options.opossum = { ...given.opossum, rotateBucketController: shared };
    }
    const breaker = new CircuitBreaker<R>(options);
    const entry: Entry<R> = { breaker, lastUsed: this.#clock.now(), staleOpen: false, unsubscribe: [] };
    entry.unsubscribe = [
      breaker.on('open', (e) => {
        entry.staleOpen = e.reason === 'halfOpenExpired';
        this.#events.emit('open', { ...e, key });
      }),
      breaker.on('halfOpen', (e) => this.#events.emit('halfOpen', { ...e, key })),
      breaker.on('close', (e) => this.#events.emit('close', { ...e, key })),
    ];
    this.#entries.set(key, entry);
    this.#lastKey = key;
    this.#created++;
    this.#startSweeper();
    this.#events.emit('create', { key, breaker });
    return breaker;
  }

  #evictForRoom(): void {
    let victim: [string, Entry<R>] | undefined;
    for (const pair of this.#entries) {
      victim ??= pair;
      if (pair[1].breaker.state === 'closed' && pair[1].breaker.inFlight === 0) {
        victim = pair;
        break;
      }
    }
    if (victim !== undefined) this.#evict(victim[0], victim[1], 'capacity');
  }

  #evict(key: string, entry: Entry<R>, reason: EvictionReason): void {
    this.#entries.delete(key);
    if (this.#lastKey === key) this.#lastKey = undefined;
    for (const off of entry.unsubscribe) off();
    entry.breaker.dispose();
    this.#evicted[reason]++;
    this.#events.emit('evict', { key, breaker: entry.breaker, reason });
    if (this.#entries.size === 0) this.#stopSweeper();
  }

  #sweep(): void {
    const cutoff = this.#clock.now() - this.idleTimeoutMs;
    for (const [key, entry] of [...this.#entries]) {
      if (entry.lastUsed > cutoff) break; // recency order: the rest are fresher
      const { breaker } = entry;
      if (breaker.inFlight === 0 && (breaker.state !== 'open' || entry.staleOpen)) this.#evict(key, entry, 'idle');
    }
  }

  #startSweeper(): void {
    if (this.#sweeper !== undefined || this.idleTimeoutMs === 0) return;
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(1_000, this.idleTimeoutMs / 2));
    this.#sweeper.unref?.();
  }

  #stopSweeper(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const { timer } of this.#rotations.values()) clearInterval(timer);
    this.#rotations.clear();
  }

  #rotation(windowMs: number, buckets: number): EventEmitter | undefined {
    const bucketMs = Math.floor(windowMs / buckets);
    // Invalid windows are left for the breaker's own validation to report.
    if (!(bucketMs >= 1 && bucketMs <= MAX_TIMER_MS)) return undefined;
    let rotation = this.#rotations.get(bucketMs);
    if (rotation === undefined) {
      const controller = new EventEmitter();
      controller.setMaxListeners(0);
      const timer = setInterval(() => controller.emit('rotate'), bucketMs);
      timer.unref?.();
      rotation = { controller, timer };
      this.#rotations.set(bucketMs, rotation);
    }
    return rotation.controller;
  }
}

/**
 * The registry given, or a new one built from the options given. Recognises a registry
 * by shape, not `instanceof`, so one from another bundle of this package (the CommonJS
 * build of a subpath) is accepted too.
 */
export function toRegistry<R>(value: BreakerRegistry<R> | BreakerRegistryOptions<R> | undefined): BreakerRegistry<R> {
  if (value instanceof BreakerRegistry) return value;
  const candidate = value as Partial<BreakerRegistry<R>> | undefined;
  if (typeof candidate?.get === 'function' && typeof candidate.close === 'function' && typeof candidate.peek === 'function') {
    return candidate as BreakerRegistry<R>;
  }
  return new BreakerRegistry(value as BreakerRegistryOptions<R> | undefined);
}
