/**
 * Prometheus metrics for every limiter of this package, through prom-client (an optional
 * peer dependency: only this entry point imports it).
 */
import { Counter, Gauge, register as globalRegistry, type Registry } from 'prom-client';
import type { ShedReason } from './errors.ts';
import type { ConcurrencyLimiter, ConcurrencyLimiterStats } from './limiter.ts';
import type { KeyedRateLimiter, KeyedRateLimiterStats } from './rate-limit.ts';
import type { RedisRateLimiter, RedisRateLimiterStats } from './redis-rate-limit.ts';
import type { AdaptiveThrottle, AdaptiveThrottleStats } from './throttle.ts';

/** Anything {@link BackpressureMetrics} can track. */
export type Trackable = ConcurrencyLimiter | KeyedRateLimiter | RedisRateLimiter | AdaptiveThrottle;

/** Options of {@link BackpressureMetrics}. */
export interface BackpressureMetricsOptions {
  /** The registry to register the metrics in. @default prom-client's global registry */
  registry?: Registry;
  /** Prefix of every metric name. @default 'ballast_backpressure_' */
  prefix?: string;
}

interface Snapshot {
  name: string;
  inflight?: number;
  queued?: number;
  limit?: number;
  admitted: number;
  shed: Partial<Record<ShedReason, number>>;
}

// Told apart by the shape of their stats, not instanceof: the CommonJS build bundles
// this entry point separately from the main one.
function snapshot(tracked: Trackable): Snapshot {
  const s: ConcurrencyLimiterStats | AdaptiveThrottleStats | KeyedRateLimiterStats | RedisRateLimiterStats = tracked.stats();
  if ('inflight' in s) return { name: s.name, inflight: s.inflight, queued: s.queued, limit: s.limit, admitted: s.admitted, shed: s.shed };
  if ('throttled' in s) return { name: s.name, admitted: s.sent, shed: { throttled: s.throttled } };
  return { name: s.name, admitted: s.allowed, shed: { rateLimited: s.limited } };
}

/**
 * Exposes limiters as Prometheus metrics, read from their `stats()` at scrape time
 * (nothing is added to the admission path):
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `ballast_backpressure_inflight` | gauge | `limiter` |
 * | `ballast_backpressure_queue_depth` | gauge | `limiter` |
 * | `ballast_backpressure_limit` | gauge | `limiter` |
 * | `ballast_backpressure_admitted_total` | counter | `limiter` |
 * | `ballast_backpressure_shed_total` | counter | `limiter`, `reason` |
 *
 * Create one per registry; `track` each limiter (names must differ).
 *
 * @example
 * ```ts
 * const metrics = new BackpressureMetrics({ registry });
 * metrics.track(limiter);
 * app.get('/metrics', async (c) => c.text(await registry.metrics()));
 * ```
 */
export class BackpressureMetrics {
  readonly #tracked = new Set<Trackable>();
  readonly #names: string[];
  readonly #registers: Registry[];

  constructor(options: BackpressureMetricsOptions = {}) {
    const registers = [options.registry ?? globalRegistry];
    const prefix = options.prefix ?? 'ballast_backpressure_';
    const tracked = this.#tracked;
    const gauge = (name: string, help: string, pick: (s: Snapshot) => number | undefined): Gauge =>
      new Gauge({
        name: prefix + name,
        help,
        labelNames: ['limiter'],
        registers,
        collect() {
          this.reset();
          for (const t of tracked) {
            const s = snapshot(t);
            const value = pick(s);
            if (value !== undefined) this.set({ limiter: s.name }, value);
          }
        },
      });
    // Registered in `registers` on construction; read at scrape time through `collect`.
    gauge('inflight', 'Requests holding a concurrency slot.', (s) => s.inflight);
    gauge('queue_depth', 'Requests waiting for a concurrency slot.', (s) => s.queued);
    gauge('limit', 'Current concurrency limit.', (s) => s.limit);
    const counter = (
      name: string,
      help: string,
      labelNames: string[],
      fill: (s: Snapshot, inc: (labels: Record<string, string>, n: number) => void) => void,
    ): Counter =>
      new Counter({
        name: prefix + name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          const inc = (labels: Record<string, string>, n: number): void => this.inc(labels, n);
          for (const t of tracked) fill(snapshot(t), inc);
        },
      });
    counter('admitted_total', 'Requests admitted.', ['limiter'], (s, inc) => inc({ limiter: s.name }, s.admitted));
    counter('shed_total', 'Requests shed, by reason.', ['limiter', 'reason'], (s, inc) => {
      for (const [reason, count] of Object.entries(s.shed)) if (count) inc({ limiter: s.name, reason }, count);
    });
    this.#names = ['inflight', 'queue_depth', 'limit', 'admitted_total', 'shed_total'].map((n) => prefix + n);
    this.#registers = registers;
  }

  /** Starts exporting `limiter`; returns a function that stops. */
  track(limiter: Trackable): () => void {
    this.#tracked.add(limiter);
    return () => {
      this.#tracked.delete(limiter);
    };
  }

  /** Stops tracking everything and removes the metrics from the registry. */
  close(): void {
    this.#tracked.clear();
    for (const name of this.#names) for (const registry of this.#registers) registry.removeSingleMetric(name);
  }
}

export { BrownoutMetrics, type BrownoutMetricsOptions } from './prometheus-brownout.ts';
