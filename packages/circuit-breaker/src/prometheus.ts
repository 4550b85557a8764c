import { ScrapedMetrics, type Unsubscribe } from '@ballast/common';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CallOutcome, CircuitState } from './state.ts';

/** Options of {@link circuitBreakerMetrics}. */
export interface CircuitBreakerMetricsOptions {
  /** Prefix of every metric name. @default "ballast_circuit_breaker_" */
  prefix?: string;
  /** Upper bounds of the latency histogram buckets, in seconds. @default [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] */
  buckets?: number[];
}

/** Registered metrics; `close()` unregisters them and stops listening. */
export interface CircuitBreakerMetrics extends Disposable {
  close(): void;
}

/** The part of a {@link CircuitBreaker} metrics read: any breaker, whatever its type parameters. */
export interface MeteredBreaker {
  readonly name: string;
  readonly state: CircuitState;
  readonly inFlight: number;
  stats(): { calls: Record<CallOutcome, number> };
  on(event: 'success' | 'failure', listener: (event: { durationMs: number }) => void): Unsubscribe;
  execute: unknown;
}

/** The part of a {@link BreakerRegistry} metrics read. */
export interface MeteredRegistry {
  entries(): Iterable<[string, MeteredBreaker]>;
  on(event: 'create' | 'evict', listener: (event: { key: string; breaker: MeteredBreaker }) => void): Unsubscribe;
  peek: unknown;
}

/** What metrics can be exported for: one breaker, a registry, or a list of breakers. */
export type MetricsSource = MeteredBreaker | MeteredRegistry | Iterable<MeteredBreaker>;

const OUTCOMES: readonly CallOutcome[] = ['success', 'error', 'result', 'slow', 'timeout', 'ignored', 'rejected'];
const STATES: readonly CircuitState[] = ['closed', 'open', 'halfOpen'];

/**
 * Exports breaker metrics to a prom-client registry. The `breaker` label is the key of
 * each breaker of a `BreakerRegistry`, and the breaker's `name` otherwise:
 * - `<prefix>calls_total{breaker,outcome}` counter — calls by outcome (`success`,
 *   `error`, `result`, `slow`, `timeout`, `ignored`, `rejected`);
 * - `<prefix>state{breaker,state}` gauge — 1 for the current state, 0 for the others;
 * - `<prefix>in_flight{breaker}` gauge — calls running;
 * - `<prefix>call_duration_seconds{breaker}` histogram — duration of calls that ran.
 *
 * Counters and gauges are read from `stats()` at scrape time (nothing on the call
 * path); the histogram observes each call through the `success` and `failure` events.
 * Breakers a registry creates later are picked up; evicted ones disappear.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * const register = new Registry();
 * circuitBreakerMetrics(register, breakers);
 * app.get('/metrics', async (c) => c.text(await register.metrics()));
 * ```
 */
export function circuitBreakerMetrics(
  register: Registry,
  source: MetricsSource,
  options: CircuitBreakerMetricsOptions = {},
): CircuitBreakerMetrics {
  const prefix = options.prefix ?? 'ballast_circuit_breaker_';
  // A registry's breakers are labelled by key: unique, whatever names their options give them.
  const breakers = (): Iterable<[string, MeteredBreaker]> => {
    if (isRegistry(source)) return source.entries();
    if (isBreaker(source)) return [[source.name, source]];
    return [...source].map((breaker) => [breaker.name, breaker]);
  };
  const metrics = new ScrapedMetrics<MeteredBreaker, Registry>({
    classes: { Counter, Gauge },
    registers: [register],
    prefix,
    snapshots: breakers,
  });
  metrics.counter('calls_total', 'Calls through the circuit breaker, by outcome.', ['breaker', 'outcome'], (set, label, b) => {
    const counts = b.stats().calls;
    for (const outcome of OUTCOMES) set({ breaker: label, outcome }, counts[outcome]);
  });
  metrics.gauge(
    'state',
    'Circuit state: 1 for the current state of each breaker, 0 for the others.',
    ['breaker', 'state'],
    (set, label, b) => {
      for (const state of STATES) set({ breaker: label, state }, b.state === state ? 1 : 0);
    },
  );
  metrics.gauge('in_flight', 'Calls running through the circuit breaker.', ['breaker'], (set, label, b) =>
    set({ breaker: label }, b.inFlight),
  );
  const duration = new Histogram({
    name: `${prefix}call_duration_seconds`,
    help: 'Duration of the calls that ran through the circuit breaker, in seconds.',
    labelNames: ['breaker'],
    buckets: options.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [register],
  });

  const listening = new Map<MeteredBreaker, { label: string; off: Unsubscribe[] }>();
  const listen = (label: string, breaker: MeteredBreaker): void => {
    if (listening.has(breaker)) return;
    const observe = ({ durationMs }: { durationMs: number }): void => duration.observe({ breaker: label }, durationMs / 1_000);
    listening.set(breaker, { label, off: [breaker.on('success', observe), breaker.on('failure', observe)] });
  };
  const forget = (breaker: MeteredBreaker): void => {
    const entry = listening.get(breaker);
    if (entry === undefined) return;
    for (const off of entry.off) off();
    listening.delete(breaker);
    duration.remove({ breaker: entry.label });
  };
  for (const [label, breaker] of breakers()) listen(label, breaker);
  const registryListeners: Unsubscribe[] = isRegistry(source)
    ? [source.on('create', ({ key, breaker }) => listen(key, breaker)), source.on('evict', ({ breaker }) => forget(breaker))]
    : [];

  let closed = false;
  const close = (): void => {
    if (closed) return;
    closed = true;
    for (const off of registryListeners) off();
    for (const breaker of [...listening.keys()]) forget(breaker);
    metrics.close();
    register.removeSingleMetric(`${prefix}call_duration_seconds`);
  };
  return { close, [Symbol.dispose]: close };
}

function isRegistry(value: MetricsSource): value is MeteredRegistry {
  return typeof (value as MeteredRegistry).peek === 'function' && typeof (value as MeteredRegistry).entries === 'function';
}

function isBreaker(value: MetricsSource): value is MeteredBreaker {
  return typeof (value as MeteredBreaker).execute === 'function';
}
