/**
 * Prometheus metrics of brownout controllers, through prom-client (exported from
 * `@ballast/backpressure/prometheus`).
 */
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
  readonly #names: string[] = [];
  readonly #registers: Registry[];

  constructor(options: BrownoutMetricsOptions = {}) {
    const registers = [options.registry ?? globalRegistry];
    this.#registers = registers;
    const prefix = options.prefix ?? 'ballast_brownout_';
    const tracked = this.#tracked;
    const each = (fill: (s: BrownoutStats) => void): void => {
      for (const controller of tracked) fill(controller.stats());
    };
    const gauge = (name: string, help: string, pick: (s: BrownoutStats) => number): void => {
      this.#names.push(prefix + name);
      new Gauge({
        name: prefix + name,
        help,
        labelNames: ['controller'],
        registers,
        collect() {
          this.reset();
          each((s) => {
            const value = pick(s);
            if (Number.isFinite(value)) this.set({ controller: s.name }, value);
          });
        },
      });
    };
    const counter = (name: string, help: string, labelNames: string[], fill: (s: BrownoutStats, c: Counter) => void): void => {
      this.#names.push(prefix + name);
      new Counter({
        name: prefix + name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          each((s) => fill(s, this));
        },
      });
    };
    gauge('level', 'The dimmer θ: share of optional work served, 0–1.', (s) => s.level);
    gauge('setpoint_seconds', 'Setpoint of the controlled latency percentile.', (s) => s.setpointMs / 1000);
    gauge('measured_seconds', 'The controlled latency percentile of the last period measured.', (s) => s.measuredMs / 1000);
    gauge('alpha_seconds', 'Estimate of α: the latency one unit of θ costs.', (s) => s.alphaMs / 1000);
    counter('updates_total', 'Control steps run.', ['controller'], (s, c) => c.inc({ controller: s.name }, s.updates));
    counter('holds_total', 'Control periods skipped for lack of samples.', ['controller'], (s, c) =>
      c.inc({ controller: s.name }, s.holds),
    );
    counter('optional_total', 'Decisions on optional work, by decision.', ['controller', 'decision'], (s, c) => {
      c.inc({ controller: s.name, decision: 'served' }, s.optionalServed);
      c.inc({ controller: s.name, decision: 'skipped' }, s.optionalSkipped);
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
    for (const name of this.#names) for (const registry of this.#registers) registry.removeSingleMetric(name);
  }
}
