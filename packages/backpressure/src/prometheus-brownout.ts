/**
 * Prometheus metrics of brownout controllers, through prom-client (exported from
 * `@ballast/backpressure/prometheus`).
 */
import { ScrapedMetrics } from '@ballast/common';
import { Counter, Gauge, register as globalRegistry, type Registry } from 'prom-client';
import type { BrownoutController, BrownoutStats } from './brownout.ts';

/** Options of {@link BrownoutMetrics}. */
export interface BrownoutMetricsOptions {
  /** The registry to register the metrics in. @default prom-client's global registry */
  registry?: Registry;
  /** Prefix of every metric name. @default 'ballast_brownout_' */
  prefix?: string;
}

/**
 * Exposes brownout controllers as Prometheus metrics, read from their `stats()` at scrape
 * time (nothing is added to a request's path):
 *
 * | metric | type | labels |
 * | --- | --- | --- |
 * | `ballast_brownout_level` | gauge: the dimmer θ, 0–1 | `controller` |
 * | `ballast_brownout_setpoint_seconds` | gauge | `controller` |
 * | `ballast_brownout_measured_seconds` | gauge: the controlled percentile of the last period | `controller` |
 * | `ballast_brownout_alpha_seconds` | gauge: the estimate of α | `controller` |
 * | `ballast_brownout_updates_total` | counter: control steps | `controller` |
 * | `ballast_brownout_holds_total` | counter: periods without samples | `controller` |
 * | `ballast_brownout_optional_total` | counter: optional work served or skipped | `controller`, `decision` |
 *
 * @example
 * ```ts
 * const metrics = new BrownoutMetrics({ registry });
 * metrics.track(dimmer);
 * ```
 */
export class BrownoutMetrics {
  readonly #tracked = new Set<BrownoutController>();
  readonly #metrics: ScrapedMetrics<BrownoutStats, Registry>;

  constructor(options: BrownoutMetricsOptions = {}) {
    const tracked = this.#tracked;
    const metrics = new ScrapedMetrics<BrownoutStats, Registry>({
      classes: { Counter, Gauge },
      registers: [options.registry ?? globalRegistry],
      prefix: options.prefix ?? 'ballast_brownout_',
      snapshots: () => [...tracked].map((controller) => controller.stats()).map((s) => [s.name, s] as const),
    });
    this.#metrics = metrics;
    const gauge = (name: string, help: string, pick: (s: BrownoutStats) => number): void =>
      metrics.gauge(name, help, ['controller'], (set, controller, s) => {
        const value = pick(s);
        if (Number.isFinite(value)) set({ controller }, value);
      });
    gauge('level', 'The dimmer θ: share of optional work served, 0–1.', (s) => s.level);
    gauge('setpoint_seconds', 'Setpoint of the controlled latency percentile.', (s) => s.setpointMs / 1000);
    gauge('measured_seconds', 'The controlled latency percentile of the last period measured.', (s) => s.measuredMs / 1000);
    gauge('alpha_seconds', 'Estimate of α: the latency one unit of θ costs.', (s) => s.alphaMs / 1000);
    metrics.counter('updates_total', 'Control steps run.', ['controller'], (set, controller, s) => set({ controller }, s.updates));
    metrics.counter('holds_total', 'Control periods skipped for lack of samples.', ['controller'], (set, controller, s) =>
      set({ controller }, s.holds),
    );
    metrics.counter('optional_total', 'Decisions on optional work, by decision.', ['controller', 'decision'], (set, controller, s) => {
      set({ controller, decision: 'served' }, s.optionalServed);
      set({ controller, decision: 'skipped' }, s.optionalSkipped);
    });
  }

  /** Starts exporting `controller` (names must differ); returns a function that stops. */
  track(controller: BrownoutController): () => void {
    this.#tracked.add(controller);
    return () => {
      this.#tracked.delete(controller);
    };
  }

  /** Stops tracking everything and removes the metrics from the registry. */
  close(): void {
    this.#tracked.clear();
    this.#metrics.close();
  }
}
