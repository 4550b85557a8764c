import {
  type Clock,
  durationMs,
  finiteNumber,
  func,
  InvalidOptionError,
  integer,
  nonEmptyString,
  oneOf,
  systemClock,
} from '@ballast/common';
import type { OpossumOptions } from './opossum-types.ts';
import type { CircuitBreakerSnapshot } from './state.ts';

/**
 * Options of a {@link CircuitBreaker}. Every opossum option is accepted under its
 * opossum name and passed to opossum (see {@link OpossumOptions}); Ballast changes
 * three defaults (`rollingPercentilesEnabled: false`, `volumeThreshold: 20`,
 * `enableSnapshots: false`) and takes over `timeout` and `resetTimeout`, which it
 * implements per call and with half-open trial calls. opossum's `abortController` and
 * `autoRenewAbortController` are refused: every call gets its own signal instead.
 *
 * @typeParam R the result type of the protected calls, as seen by `isFailure`.
 */
export interface CircuitBreakerOptions<R = unknown> extends OpossumOptions {
  /** Name used in events, errors, stats and metrics. @default the action's name, else `"circuit"` */
  name?: string;
  /**
   * Per-call timeout, in ms, or `false` for none. A call that exceeds it has its own
   * signal aborted with a `TimeoutError`, rejects, and counts as a failure; other
   * calls in flight are not touched.
   * @default 10000
   */
  timeout?: number | false;
  /** How long the circuit stays open before admitting trial calls, in ms. @default 30000 */
  resetTimeout?: number;
  /**
   * Returns true for errors that are the caller's fault (a 4xx, a validation error):
   * they are rethrown but do not count against the circuit (opossum counts them as
   * successes in its window).
   * @default () => false
   */
  errorFilter?: (error: unknown) => boolean;
  /**
   * Returns true for results that are failures although nothing was thrown (e.g. a
   * `Response` with status 503). The result is still returned to the caller.
   * @default () => false
   */
  isFailure?: (result: R) => boolean;
  /**
   * A successful call that takes at least this long, in ms, counts as a failure
   * (resilience4j's slow-call rate); its result is still returned.
   * @default undefined (off)
   */
  slowCallDurationMs?: number;
  /** Trial calls admitted per half-open period. @default 3 */
  halfOpenMaxCalls?: number;
  /**
   * Successful trial calls needed to close the circuit; once so many trials have
   * failed that this can no longer be reached, the circuit opens again.
   * @default halfOpenMaxCalls
   */
  halfOpenSuccessThreshold?: number;
  /**
   * Longest a half-open period may last, in ms, before the circuit opens again
   * (trial calls that never finish, or never come, cannot hold it half-open).
   * @default 60000
   */
  halfOpenMaxDurationMs?: number;
  /** State to start from, as returned by `toJSON()` before a restart. @default closed */
  initialState?: CircuitBreakerSnapshot;
  /** Monotonic time source for latencies and `retryAfterMs`. Must follow the timers (fake timers do). @default systemClock */
  clock?: Clock;
}

/** Options after defaults and validation. */
export interface ResolvedOptions<R> {
  name: string;
  timeoutMs: number | undefined;
  resetTimeoutMs: number;
  errorFilter: ((error: unknown) => boolean) | undefined;
  isFailure: ((result: R) => boolean) | undefined;
  slowCallDurationMs: number;
  halfOpenMaxCalls: number;
  halfOpenSuccessThreshold: number;
  halfOpenMaxDurationMs: number;
  initialState: CircuitBreakerSnapshot | undefined;
  clock: Clock;
  opossum: Record<string, unknown>;
}

/** Ballast's defaults, in one place. */
export const DEFAULTS = {
  timeout: 10_000,
  resetTimeout: 30_000,
  volumeThreshold: 20,
  rollingPercentilesEnabled: false,
  enableSnapshots: false,
  halfOpenMaxCalls: 3,
  halfOpenMaxDurationMs: 60_000,
} as const;

const BALLAST_KEYS = new Set([
  'name',
  'timeout',
  'resetTimeout',
  'errorFilter',
  'isFailure',
  'slowCallDurationMs',
  'halfOpenMaxCalls',
  'halfOpenSuccessThreshold',
  'halfOpenMaxDurationMs',
  'initialState',
  'clock',
]);
const REFUSED: Record<string, string> = {
  abortController: 'absent: every call gets its own AbortSignal (pass yours to execute(fn, { signal }))',
  autoRenewAbortController: 'absent: every call gets its own AbortSignal',
  state: 'absent: use initialState',
  status: 'absent: Ballast does not prime opossum statistics',
  maxFailures: 'absent: use errorThresholdPercentage',
};

/** Applies defaults and validates; throws InvalidOptionError naming the option. */
export function resolveOptions<R>(options: CircuitBreakerOptions<R>, actionName: string | undefined): ResolvedOptions<R> {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object', options);
  for (const key of Object.keys(options)) {
    const refused = REFUSED[key];
    if (refused !== undefined && (options as Record<string, unknown>)[key] !== undefined) {
      throw new InvalidOptionError(key, refused, (options as Record<string, unknown>)[key]);
    }
  }
  const timeout = options.timeout ?? DEFAULTS.timeout;
  const timeoutMs = timeout === false ? undefined : durationMs('timeout', timeout, { min: 1 });
  const halfOpenMaxCalls = integer('halfOpenMaxCalls', options.halfOpenMaxCalls ?? DEFAULTS.halfOpenMaxCalls, { min: 1 });
  const rollingCountTimeout = durationMs('rollingCountTimeout', options.rollingCountTimeout ?? 10_000, { min: 1 });
  const rollingCountBuckets = integer('rollingCountBuckets', options.rollingCountBuckets ?? 10, {
    min: 1,
    max: rollingCountTimeout,
  });
  const opossum: Record<string, unknown> = {
    rollingPercentilesEnabled: DEFAULTS.rollingPercentilesEnabled,
    enableSnapshots: DEFAULTS.enableSnapshots,
  };
  for (const [key, value] of Object.entries(options)) if (!BALLAST_KEYS.has(key) && value !== undefined) opossum[key] = value;
  opossum.errorThresholdPercentage = finiteNumber('errorThresholdPercentage', options.errorThresholdPercentage ?? 50, {
    min: 0,
    max: 100,
  });
  opossum.volumeThreshold = integer('volumeThreshold', options.volumeThreshold ?? DEFAULTS.volumeThreshold, { min: 0 });
  opossum.rollingCountTimeout = rollingCountTimeout;
  opossum.rollingCountBuckets = rollingCountBuckets;
  if (options.capacity !== undefined) integer('capacity', options.capacity, { min: 1 });
  if (options.coalesce && options.coalesceTTL === undefined) opossum.coalesceTTL = timeoutMs ?? 0;
  return {
    name: options.name === undefined ? actionName || 'circuit' : nonEmptyString('name', options.name),
    timeoutMs,
    resetTimeoutMs: durationMs('resetTimeout', options.resetTimeout ?? DEFAULTS.resetTimeout),
    errorFilter: options.errorFilter === undefined ? undefined : func<(error: unknown) => boolean>('errorFilter', options.errorFilter),
    isFailure: options.isFailure === undefined ? undefined : func<(result: R) => boolean>('isFailure', options.isFailure),
    slowCallDurationMs:
      options.slowCallDurationMs === undefined
        ? Number.POSITIVE_INFINITY
        : durationMs('slowCallDurationMs', options.slowCallDurationMs, { min: 1 }),
    halfOpenMaxCalls,
    halfOpenSuccessThreshold: integer('halfOpenSuccessThreshold', options.halfOpenSuccessThreshold ?? halfOpenMaxCalls, {
      min: 1,
      max: halfOpenMaxCalls,
    }),
    halfOpenMaxDurationMs: durationMs('halfOpenMaxDurationMs', options.halfOpenMaxDurationMs ?? DEFAULTS.halfOpenMaxDurationMs, {
      min: 1,
    }),
    initialState: options.initialState === undefined ? undefined : snapshot(options.initialState),
    clock: options.clock ?? systemClock,
    opossum,
  };
}

function snapshot(value: unknown): CircuitBreakerSnapshot {
  if (value === null || typeof value !== 'object') throw new InvalidOptionError('initialState', 'an object from toJSON()', value);
  const { name, state, openedAt } = value as Partial<CircuitBreakerSnapshot>;
  return {
    name: typeof name === 'string' ? name : '',
    state: oneOf('initialState.state', state, ['closed', 'open', 'halfOpen']),
    ...(openedAt === undefined ? {} : { openedAt: finiteNumber('initialState.openedAt', openedAt) }),
  };
}
