import { type Clock, durationMs, finiteNumber, InvalidOptionError, integer, nonEmptyString, ratio, systemClock } from '@ballast/common';
import type { BalancingStrategy, Endpoint, EndpointInput } from './types.ts';

/**
 * Passive outlier detection: endpoints that fail are ejected for a while, longer each
 * time they are ejected again, as Envoy does.
 */
export interface OutlierDetectionOptions {
  /** Consecutive failures that eject an endpoint; 0 disables this test. @default 5 */
  consecutiveFailures?: number;
  /** Share of failures over the error-rate window that ejects an endpoint (0–1); 0 disables. @default 0.5 */
  failureRate?: number;
  /** Requests needed in the window before the failure rate is trusted. @default 20 */
  failureRateMinimumRequests?: number;
  /** First ejection time, ms; the n-th ejection in a row lasts n times this. @default 30_000 */
  baseEjectionTimeMs?: number;
  /** Cap on an ejection's length, ms. @default 300_000 */
  maxEjectionTimeMs?: number;
  /** Most endpoints ejected at once, percent of all endpoints (at least one is always allowed). @default 10 */
  maxEjectionPercent?: number;
}

/**
 * Slow start: an endpoint that joins or returns (restored, marked up) takes a share of
 * traffic that grows linearly over `windowMs`, from `minWeightPercent` to its full share.
 */
export interface SlowStartOptions {
  /** Length of the ramp, ms; 0 disables slow start. @default 30_000 */
  windowMs?: number;
  /** Share of its weight an endpoint takes at the start of the ramp, percent. @default 10 */
  minWeightPercent?: number;
}

/** Options of {@link LoadBalancer}. */
export interface LoadBalancerOptions {
  /** Initial endpoints. @default [] */
  endpoints?: readonly EndpointInput[];
  /** The balancing strategy; one instance per balancer. @default powerOfTwoChoices() */
  strategy?: BalancingStrategy;
  /** Source of time; every time read goes through it. @default systemClock */
  clock?: Clock;
  /** Random source in [0, 1), for strategies and slow start. Inject a seeded one for repeatable runs. @default Math.random */
  random?: () => number;
  /** Passive outlier ejection; `false` disables it. @default {} (enabled, defaults above) */
  outlierDetection?: OutlierDetectionOptions | false;
  /** Slow start; `false` (the default) disables it. @default false */
  slowStart?: SlowStartOptions | false;
  /**
   * When fewer than this percent of the (non-draining) endpoints are healthy, the
   * balancer ignores health and balances over all of them, so a wave of failures does
   * not pile the whole load on the few survivors. 0 disables panic mode. @default 50
   */
  panicThresholdPercent?: number;
  /** Time constant of the latency average reported in stats, ms. @default 10_000 */
  latencyDecayMs?: number;
  /** Window over which the error rate is computed (stats, failure-rate ejection, dynamic weights), ms. @default 10_000 */
  errorRateWindowMs?: number;
}

/** Outlier detection options with defaults applied. */
export interface ResolvedOutlierDetection {
  consecutiveFailures: number;
  failureRate: number;
  failureRateMinimumRequests: number;
  baseEjectionTimeMs: number;
  maxEjectionTimeMs: number;
  maxEjectionPercent: number;
}

/** Slow-start options with defaults applied. */
export interface ResolvedSlowStart {
  windowMs: number;
  minWeight: number;
}

export function resolveOutlierDetection(options: OutlierDetectionOptions | false | undefined): ResolvedOutlierDetection | undefined {
  if (options === false) return undefined;
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new InvalidOptionError('outlierDetection', 'an object or false', options);
  }
  const o = options ?? {};
  const base = durationMs('outlierDetection.baseEjectionTimeMs', o.baseEjectionTimeMs ?? 30_000, { min: 1 });
  return {
    consecutiveFailures: integer('outlierDetection.consecutiveFailures', o.consecutiveFailures ?? 5, { min: 0 }),
    failureRate: ratio('outlierDetection.failureRate', o.failureRate ?? 0.5),
    failureRateMinimumRequests: integer('outlierDetection.failureRateMinimumRequests', o.failureRateMinimumRequests ?? 20, { min: 1 }),
    baseEjectionTimeMs: base,
    maxEjectionTimeMs: durationMs('outlierDetection.maxEjectionTimeMs', o.maxEjectionTimeMs ?? Math.max(300_000, base), { min: base }),
    maxEjectionPercent: finiteNumber('outlierDetection.maxEjectionPercent', o.maxEjectionPercent ?? 10, { min: 0, max: 100 }),
  };
}

export function resolveSlowStart(options: SlowStartOptions | false | undefined): ResolvedSlowStart | undefined {
  if (options === false || options === undefined) return undefined;
  if (typeof options !== 'object' || options === null) throw new InvalidOptionError('slowStart', 'an object or false', options);
  const windowMs = durationMs('slowStart.windowMs', options.windowMs ?? 30_000);
  const minWeightPercent = finiteNumber('slowStart.minWeightPercent', options.minWeightPercent ?? 10, { min: 0, max: 100 });
  return windowMs === 0 ? undefined : { windowMs, minWeight: minWeightPercent / 100 };
}

export function resolveClock(clock: Clock | undefined): Clock {
  if (clock === undefined) return systemClock;
  if (typeof clock !== 'object' || clock === null || typeof clock.now !== 'function') {
    throw new InvalidOptionError('clock', 'an object with a now() method', clock);
  }
  return clock;
}

export function resolveStrategy(strategy: unknown): BalancingStrategy {
  if (typeof strategy !== 'object' || strategy === null || typeof (strategy as BalancingStrategy).pick !== 'function') {
    throw new InvalidOptionError('strategy', 'an object with a pick() method', strategy);
  }
  return strategy as BalancingStrategy;
}

/** A weight: finite and > 0. */
export function weight(option: string, value: unknown): number {
  const w = finiteNumber(option, value);
  if (!(w > 0)) throw new InvalidOptionError(option, 'a finite number > 0', value);
  return w;
}

/** Validates an endpoint description and freezes it into an {@link Endpoint}. */
export function toEndpoint(input: EndpointInput, option = 'endpoint'): Endpoint {
  if (typeof input !== 'object' || input === null) throw new InvalidOptionError(option, 'an object with id and address', input);
  const metadata = input.metadata ?? {};
  if (typeof metadata !== 'object' || metadata === null) throw new InvalidOptionError(`${option}.metadata`, 'an object', metadata);
  return Object.freeze({
    id: nonEmptyString(`${option}.id`, input.id),
    address: nonEmptyString(`${option}.address`, input.address),
    weight: weight(`${option}.weight`, input.weight ?? 1),
    metadata,
  });
}
