import {
  boolean,
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
 * Options of a {@link CircuitBreaker}. Ballast's own options sit at the top level;
 * opossum's, which it passes to opossum, are grouped under `opossum` (see
 * {@link OpossumOptions}). Ballast changes three of opossum's defaults
 * (`rollingPercentilesEnabled: false`, `volumeThreshold: 20`, `enableSnapshots: false`) and
 * implements the call timeout and the open period itself (`timeoutMs`, `resetTimeoutMs`).
 *
 * The names of earlier releases (`timeout`, `resetTimeout`, opossum's options at the top
 * level) are still accepted; see {@link DeprecatedCircuitBreakerOptions}.
 *
 * @typeParam R the result type of the protected calls, as seen by `isFailure`.
 */
export interface CircuitBreakerOptions<R = unknown> extends DeprecatedCircuitBreakerOptions {
  /** Name used in events, errors, stats and metrics. @default the action's name, else `"circuit"` */
  name?: string;
  /**
   * Per-call timeout, in ms, or `false` for none. A call that exceeds it has its own
   * signal aborted with a `TimeoutError`, rejects, and counts as a failure; other
   * calls in flight are not touched.
   * @default 10000
   */
  timeoutMs?: number | false;
  /** How long the circuit stays open before admitting trial calls, in ms. @default 30000 */
  resetTimeoutMs?: number;
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
  /**
   * Keep the latency histogram of `stats().latencyMs`: each call reads the clock when it
   * starts and when it ends. (The Prometheus export's histogram listens to the `success`
   * and `failure` events, which time every call either way.) With `false`,
   * and with no `timeoutMs`, no `slowCallDurationMs` and no listener of the breaker's
   * `success` or `failure` events, a call reads no clock at all (as cockatiel's breaker,
   * which times a call only when someone listens); `latencyMs` then stays empty.
   * @default true
   */
  recordLatency?: boolean;
  /** Monotonic time source for latencies and `retryAfterMs`. Must follow the timers (fake timers do). @default systemClock */
  clock?: Clock;
  /**
   * opossum's own options, passed to it: the rolling window and the decision to open
   * (`errorThresholdPercentage`, `volumeThreshold`, `rollingCountTimeout`…), `capacity`,
   * the cache and coalescing. Keys opossum does not know are passed to it too.
   * @default {}
   */
  opossum?: OpossumOptions;
}

/**
 * Option names of earlier releases, still accepted: `timeout` and `resetTimeout` (now
 * `timeoutMs` and `resetTimeoutMs`), and opossum's options at the top level (every
 * {@link OpossumOptions} key; now under `opossum`). Giving an old name and its new one with
 * different values is an error.
 * @deprecated These names go in the next major version.
 */
export interface DeprecatedCircuitBreakerOptions extends OpossumOptions {
  /** @deprecated Use `timeoutMs`. */
  timeout?: number | false;
  /** @deprecated Use `resetTimeoutMs`. */
  resetTimeout?: number;
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
  recordLatency: boolean;
  clock: Clock;
  /** opossum's options, defaults applied, as passed to it (before Ballast's own overrides). */
  opossum: Record<string, unknown>;
}

/** Ballast's defaults, in one place. */
export const DEFAULTS = {
  timeoutMs: 10_000,
  resetTimeoutMs: 30_000,
  volumeThreshold: 20,
  rollingPercentilesEnabled: false,
  enableSnapshots: false,
  halfOpenMaxCalls: 3,
  halfOpenMaxDurationMs: 60_000,
} as const;

const BALLAST_KEYS: ReadonlySet<string> = new Set([
  'name',
  'timeoutMs',
  'resetTimeoutMs',
  'errorFilter',
  'isFailure',
  'slowCallDurationMs',
  'halfOpenMaxCalls',
  'halfOpenSuccessThreshold',
  'halfOpenMaxDurationMs',
  'initialState',
  'recordLatency',
  'clock',
  'opossum',
]);
/** Renamed Ballast options: old name to new name. */
const RENAMED: Readonly<Record<string, string>> = { timeout: 'timeoutMs', resetTimeout: 'resetTimeoutMs' };
/** opossum options still accepted at the top level. */
const FLAT_OPOSSUM: ReadonlySet<string> = new Set([
  'errorThresholdPercentage',
  'volumeThreshold',
  'rollingCountTimeout',
  'rollingCountBuckets',
  'rollingPercentilesEnabled',
  'enableSnapshots',
  'rotateBucketController',
  'capacity',
  'enabled',
  'allowWarmUp',
  'cache',
  'cacheTTL',
  'cacheSize',
  'cacheGetKey',
  'cacheTransport',
  'coalesce',
  'coalesceTTL',
  'coalesceSize',
  'coalesceResetOn',
  'group',
]);
const REFUSED: Record<string, string> = {
  abortController: 'absent: every call gets its own AbortSignal (pass yours to execute(fn, { signal }))',
  autoRenewAbortController: 'absent: every call gets its own AbortSignal',
  state: 'absent: use initialState',
  status: 'absent: Ballast does not prime opossum statistics',
  maxFailures: 'absent: use opossum.errorThresholdPercentage',
  timeout: "absent: the call timeout is Ballast's timeoutMs",
  resetTimeout: "absent: the open period is Ballast's resetTimeoutMs",
};

/**
 * The options in their current form: old names moved to the new ones, opossum's options
 * under `opossum`, and each option's name as the caller wrote it (for error messages).
 * @throws {InvalidOptionError} for an unknown option, a refused one, or an old name and its new one set to different values.
 */
export function normalizeOptions<R>(options: CircuitBreakerOptions<R>): {
  options: CircuitBreakerOptions<R> & { opossum: Record<string, unknown> };
  labels: Record<string, string>;
} {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('options', 'an object', options);
  const given = options as Record<string, unknown>;
  const grouped = given.opossum;
  if (grouped !== undefined && (grouped === null || typeof grouped !== 'object')) {
    throw new InvalidOptionError('opossum', "an object of opossum's options", grouped);
  }
  const opossum: Record<string, unknown> = { ...(grouped as Record<string, unknown> | undefined) };
  const out: Record<string, unknown> = {};
  const labels: Record<string, string> = {};
  for (const key of Object.keys(opossum)) {
    labels[key] = `opossum.${key}`;
    const refused = REFUSED[key];
    if (refused !== undefined && opossum[key] !== undefined) throw new InvalidOptionError(`opossum.${key}`, refused, opossum[key]);
  }
  for (const [key, value] of Object.entries(given)) {
    if (value === undefined || key === 'opossum') continue;
    if (BALLAST_KEYS.has(key)) {
      out[key] = value;
      labels[key] ??= key;
      continue;
    }
    const renamed = RENAMED[key] ?? (FLAT_OPOSSUM.has(key) ? key : undefined);
    if (renamed === undefined) {
      const refused = REFUSED[key];
      throw new InvalidOptionError(key, refused ?? "a known option (opossum's own options go under `opossum`)", value);
    }
    const target = RENAMED[key] === undefined ? opossum : out;
    const newName = RENAMED[key] === undefined ? `opossum.${key}` : renamed;
    if (target[renamed] !== undefined && target[renamed] !== value) {
      throw new InvalidOptionError(key, `absent or equal to ${newName} (it is that option's old name)`, value);
    }
    target[renamed] = value;
    labels[renamed] = key;
  }
  out.opossum = opossum;
  return { options: out as unknown as CircuitBreakerOptions<R> & { opossum: Record<string, unknown> }, labels };
}

/** Applies defaults and validates; throws InvalidOptionError naming the option as the caller wrote it. */
export function resolveOptions<R>(raw: CircuitBreakerOptions<R>, actionName: string | undefined): ResolvedOptions<R> {
  const { options, labels } = normalizeOptions(raw);
  const name = (key: string): string => labels[key] ?? key;
  const given = options.opossum;
  const timeout = options.timeoutMs ?? DEFAULTS.timeoutMs;
  const timeoutMs = timeout === false ? undefined : durationMs(name('timeoutMs'), timeout, { min: 1 });
  const halfOpenMaxCalls = integer('halfOpenMaxCalls', options.halfOpenMaxCalls ?? DEFAULTS.halfOpenMaxCalls, { min: 1 });
  const rollingCountTimeout = durationMs(name('rollingCountTimeout'), given.rollingCountTimeout ?? 10_000, { min: 1 });
  const rollingCountBuckets = integer(name('rollingCountBuckets'), given.rollingCountBuckets ?? 10, {
    min: 1,
    max: rollingCountTimeout,
  });
  const opossum: Record<string, unknown> = {
    rollingPercentilesEnabled: DEFAULTS.rollingPercentilesEnabled,
    enableSnapshots: DEFAULTS.enableSnapshots,
    ...given,
  };
  opossum.errorThresholdPercentage = finiteNumber(name('errorThresholdPercentage'), given.errorThresholdPercentage ?? 50, {
    min: 0,
    max: 100,
  });
  opossum.volumeThreshold = integer(name('volumeThreshold'), given.volumeThreshold ?? DEFAULTS.volumeThreshold, { min: 0 });
  opossum.rollingCountTimeout = rollingCountTimeout;
  opossum.rollingCountBuckets = rollingCountBuckets;
  if (given.capacity !== undefined) integer(name('capacity'), given.capacity, { min: 1 });
  if (given.coalesce && given.coalesceTTL === undefined) opossum.coalesceTTL = timeoutMs ?? 0;
  return {
    name: options.name === undefined ? actionName || 'circuit' : nonEmptyString('name', options.name),
    timeoutMs,
    resetTimeoutMs: durationMs(name('resetTimeoutMs'), options.resetTimeoutMs ?? DEFAULTS.resetTimeoutMs),
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
    recordLatency: boolean('recordLatency', options.recordLatency ?? true),
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
