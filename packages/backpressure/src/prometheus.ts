/**
 * Prometheus metrics for every limiter of this package, through prom-client (an optional
 * peer dependency: only this entry point imports it).
 */
import { ScrapedMetrics } from '@ballast/common';
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
  readonly #metrics: ScrapedMetrics<Snapshot, Registry>;

  constructor(options: BackpressureMetricsOptions = {}) {
    const tracked = this.#tracked;
    // Registered on construction; read at scrape time through `collect`.
    const metrics = new ScrapedMetrics<Snapshot, Registry>({
      classes: { Counter, Gauge },
      registers: [options.registry ?? globalRegistry],
      prefix: options.prefix ?? 'ballast_backpressure_',
      snapshots: () => [...tracked].map(snapshot).map((s) => [s.name, s] as const),
    });
    this.#metrics = metrics;
    const gauge = (name: string, help: string, pick: (s: Snapshot) => number | undefined): void =>
      metrics.gauge(name, help, ['limiter'], (set, limiter, s) => {
        const value = pick(s);
        if (value !== undefined) set({ limiter }, value);
      });
    gauge('inflight', 'Requests holding a concurrency slot.', (s) => s.inflight);
    gauge('queue_depth', 'Requests waiting for a concurrency slot.', (s) => s.queued);
    gauge('limit', 'Current concurrency limit.', (s) => s.limit);
    metrics.counter('admitted_total', 'Requests admitted.', ['limiter'], (set, limiter, s) => set({ limiter }, s.admitted));
    metrics.counter('shed_total', 'Requests shed, by reason.', ['limiter', 'reason'], (set, limiter, s) => {
      for (const [reason, count] of Object.entries(s.shed)) if (count) set({ limiter, reason }, count);
    });
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
    this.#metrics.close();
  }
}

export { BrownoutMetrics, type BrownoutMetricsOptions } from './prometheus-brownout.ts';
