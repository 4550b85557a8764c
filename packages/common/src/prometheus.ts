/**
 * Metrics read from `stats()` at scrape time, shared by the packages' Prometheus exports.
 * prom-client is not a dependency of this package: the caller passes its `Counter` and
 * `Gauge` classes, so this file needs nothing installed.
 */

/** Writes one labelled value of the metric being collected. */
export type MetricWrite = (labels: Record<string, string>, value: number) => void;

/** Fills a metric from one source's snapshot: `source` is its name (the label value), `stats` its snapshot. */
export type MetricFill<S> = (set: MetricWrite, source: string, stats: S) => void;

/** What a prom-client metric offers to its own `collect` function. */
export interface CollectingMetric {
  reset(): void;
  inc(labels: Record<string, string>, value: number): void;
}

/** What a prom-client registry offers to remove a metric. */
export interface MetricRegistry {
  removeSingleMetric(name: string): void;
}

/** A prom-client metric class (`Counter` or `Gauge`), as the helper constructs it; `R` is prom-client's `Registry`. */
export type MetricClass<R extends MetricRegistry = MetricRegistry> = new (config: {
  name: string;
  help: string;
  labelNames: string[];
  registers: R[];
  collect(this: CollectingMetric & { set?(labels: Record<string, string>, value: number): void }): void;
}) => unknown;

/** Options of {@link ScrapedMetrics}. */
export interface ScrapedMetricsOptions<S, R extends MetricRegistry = MetricRegistry> {
  /** prom-client's `Counter` and `Gauge` (`import { Counter, Gauge } from 'prom-client'`). */
  classes: { Counter: MetricClass<R>; Gauge: MetricClass<R> };
  /** The registries every metric is registered in. */
  registers: R[];
  /** Prefix of every metric name. */
  prefix: string;
  /** The sources to read at each scrape, by name. */
  snapshots: () => Iterable<readonly [string, S]>;
}

/**
 * A set of counters and gauges filled from snapshots when Prometheus scrapes, so nothing
 * runs on a request path. A counter is reset and set to each source's running total; a
 * gauge to its current value. `close()` removes every metric from the registries.
 *
 * @example
 * ```ts
 * const metrics = new ScrapedMetrics({ classes: { Counter, Gauge }, registers: [register], prefix: 'ballast_lb_',
 *   snapshots: () => [['default', lb.stats()]] });
 * metrics.gauge('panic', '1 while in panic mode.', ['balancer'], (set, balancer, s) => set({ balancer }, s.panic ? 1 : 0));
 * ```
 */
export class ScrapedMetrics<S, R extends MetricRegistry = MetricRegistry> implements Disposable {
  /** Full names (prefix included) of the metrics registered, in order. */
  readonly names: string[] = [];
  readonly #options: ScrapedMetricsOptions<S, R>;
  #closed = false;

  constructor(options: ScrapedMetricsOptions<S, R>) {
    this.#options = options;
  }

  /** Registers a counter; `fill` sets each labelled running total. */
  counter(name: string, help: string, labelNames: string[], fill: MetricFill<S>): void {
    this.#register('counter', name, help, labelNames, fill);
  }

  /** Registers a gauge; `fill` sets each labelled current value. */
  gauge(name: string, help: string, labelNames: string[], fill: MetricFill<S>): void {
    this.#register('gauge', name, help, labelNames, fill);
  }

  /** Removes every metric registered here from the registries; a second call does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const name of this.names) for (const registry of this.#options.registers) registry.removeSingleMetric(name);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #register(kind: 'counter' | 'gauge', name: string, help: string, labelNames: string[], fill: MetricFill<S>): void {
    const { classes, registers, prefix, snapshots } = this.#options;
    const Metric = kind === 'counter' ? classes.Counter : classes.Gauge;
    this.names.push(prefix + name);
    new Metric({
      name: prefix + name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        const set: MetricWrite =
          kind === 'counter' || this.set === undefined ? (labels, value) => this.inc(labels, value) : this.set.bind(this);
        for (const [source, stats] of snapshots()) fill(set, source, stats);
      },
    });
  }
}
