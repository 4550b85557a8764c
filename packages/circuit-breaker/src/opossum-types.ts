import type { EventEmitter } from 'node:events';

/**
 * opossum's own options, passed through to it unchanged except where noted on
 * {@link CircuitBreakerOptions}. The descriptions are opossum's; see its README.
 */
export interface OpossumOptions {
  /** Percentage of failed calls in the rolling window at which the circuit opens. @default 50 */
  errorThresholdPercentage?: number;
  /** Minimum calls in the rolling window before the circuit may open. @default 20 (opossum's default is 0) */
  volumeThreshold?: number;
  /** Length of the rolling statistics window, in ms. @default 10000 */
  rollingCountTimeout?: number;
  /** Number of buckets the rolling window is divided into. @default 10 */
  rollingCountBuckets?: number;
  /**
   * Whether opossum keeps every latency of the window and sorts them to compute
   * percentiles. That makes each failed call cost O(calls in the window).
   * @default false (opossum's default is true)
   */
  rollingPercentilesEnabled?: boolean;
  /** Whether opossum emits a `snapshot` event on a timer each bucket. @default false (opossum's default is true) */
  enableSnapshots?: boolean;
  /** An EventEmitter whose `rotate` events rotate the window buckets instead of one timer per breaker. */
  rotateBucketController?: EventEmitter;
  /** Maximum concurrent calls; above it opossum rejects with `ESEMLOCKED` (counted as a failure). @default unlimited */
  capacity?: number;
  /** Whether the circuit protects calls at all; when false calls go straight through. @default true */
  enabled?: boolean;
  /** Ignore failures for the first `rollingCountTimeout` ms after construction. @default false */
  allowWarmUp?: boolean;
  /** Cache the first successful result (opossum's cache). @default false */
  cache?: boolean;
  /** Cache time to live, in ms; 0 is forever. @default 0 */
  cacheTTL?: number;
  /** Maximum entries in opossum's in-memory cache. */
  cacheSize?: number;
  /** Computes the cache key from the call's arguments. */
  cacheGetKey?: (...args: never[]) => string;
  /** A custom cache with `get`, `set` and `flush`. */
  cacheTransport?: { get(key: string): unknown; set(key: string, value: unknown, expiresAt: number): void; flush(): void };
  /** Share one in-flight promise between identical concurrent calls. @default false */
  coalesce?: boolean;
  /** Coalescing time to live, in ms. @default the call timeout */
  coalesceTTL?: number;
  /** Maximum entries in the coalescing cache. */
  coalesceSize?: number;
  /** When to drop a coalesced promise early. */
  coalesceResetOn?: Array<'error' | 'success' | 'timeout'>;
  /** opossum's group name, used by its own metrics packages. @default the name */
  group?: string;
}

/** The rolling-window counters opossum reports (`breaker.opossum.stats`). */
export interface OpossumStats {
  failures: number;
  fallbacks: number;
  successes: number;
  rejects: number;
  fires: number;
  timeouts: number;
  cacheHits: number;
  cacheMisses: number;
  coalesceCacheHits: number;
  coalesceCacheMisses: number;
  semaphoreRejections: number;
  latencyMean: number;
  percentiles: Record<string, number>;
  latencyTimes: number[];
}

/**
 * The opossum breaker a Ballast breaker drives, for what Ballast does not wrap
 * (`enable`/`disable`, cache control, its own events; its `fallback` and `healthCheck`
 * set the Ballast breaker's).
 * The surface listed is opossum 10's.
 */
export interface OpossumBreaker extends EventEmitter {
  readonly name: string;
  readonly group: string;
  readonly opened: boolean;
  readonly halfOpen: boolean;
  readonly closed: boolean;
  readonly enabled: boolean;
  readonly warmUp: boolean;
  readonly isShutdown: boolean;
  readonly volumeThreshold: number;
  readonly stats: OpossumStats;
  readonly status: EventEmitter & { readonly stats: OpossumStats; rotateBucket?: () => void };
  readonly options: Record<string, unknown>;
  fire(...args: unknown[]): Promise<unknown>;
  open(): void;
  close(): void;
  shutdown(): void;
  enable(): void;
  disable(): void;
  fallback(fn: (...args: never[]) => unknown): this;
  healthCheck(fn: () => Promise<unknown>, intervalMs?: number): void;
  clearCache(): void;
  toJSON(): { state: Record<string, unknown>; status: OpossumStats };
}

/** opossum's constructor and static helpers. */
export interface OpossumConstructor {
  new (action: (...args: never[]) => unknown, options?: Record<string, unknown>): OpossumBreaker;
  isOurError(error: unknown): boolean;
}
