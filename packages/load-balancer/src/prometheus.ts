import { ScrapedMetrics } from '@ballast/common';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { LoadBalancer, LoadBalancerStats } from './balancer.ts';
import type { EndpointHealth } from './types.ts';

/** Options of {@link loadBalancerMetrics}. */
export interface LoadBalancerMetricsOptions {
  /** Prefix of every metric name. @default "ballast_load_balancer_" */
  prefix?: string;
}

/** Registered metrics; `close()` unregisters them. */
export interface LoadBalancerMetrics extends Disposable {
  close(): void;
}

const STATES: readonly EndpointHealth[] = ['healthy', 'warming', 'ejected', 'down', 'draining'];
const OUTCOMES = ['success', 'failure', 'cancelled'] as const;

/**
 * Exports balancer metrics to a prom-client registry, read from `stats()` at scrape time
 * (nothing on the request path). `balancers` is one balancer (labelled `default`) or
 * balancers by name; the name is the `balancer` label.
 * - `<prefix>requests_total{balancer,endpoint,outcome}` counter — finished requests by
 *   outcome (`success`, `failure`, `cancelled`);
 * - `<prefix>picks_total{balancer,endpoint}` counter — requests sent to the endpoint;
 * - `<prefix>ejections_total{balancer,endpoint}` counter — outlier ejections;
 * - `<prefix>in_flight{balancer,endpoint}` gauge — requests picked and not yet done;
 * - `<prefix>state{balancer,endpoint,state}` gauge — 1 for the endpoint's state, 0 for the others;
 * - `<prefix>latency_seconds{balancer,endpoint}` gauge — time-decayed average latency;
 * - `<prefix>error_rate{balancer,endpoint}` gauge — failures / requests over the error-rate window;
 * - `<prefix>panic{balancer}` gauge — 1 while in panic mode;
 * - `<prefix>no_endpoint_total{balancer}` counter — picks that found no endpoint.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * const register = new Registry();
 * loadBalancerMetrics(register, { api: lb });
 * app.get('/metrics', async (c) => c.text(await register.metrics()));
 * ```
 */
export function loadBalancerMetrics(
  register: Registry,
  balancers: LoadBalancer | Readonly<Record<string, LoadBalancer>>,
  options: LoadBalancerMetricsOptions = {},
): LoadBalancerMetrics {
  const prefix = options.prefix ?? 'ballast_load_balancer_';
  const named: Array<[string, LoadBalancer]> =
    typeof (balancers as LoadBalancer).pick === 'function'
      ? [['default', balancers as LoadBalancer]]
      : Object.entries(balancers as Record<string, LoadBalancer>);
  const metrics = new ScrapedMetrics<LoadBalancerStats, Registry>({
    classes: { Counter, Gauge },
    registers: [register],
    prefix,
    snapshots: () => named.map(([name, lb]) => [name, lb.stats()] as const),
  });
  const perEndpoint = ['balancer', 'endpoint'];

  metrics.counter('requests_total', 'Finished requests by endpoint and outcome.', [...perEndpoint, 'outcome'], (set, balancer, s) => {
    for (const e of s.endpoints) {
      const counts = { success: e.successes, failure: e.failures, cancelled: e.cancelled };
      for (const outcome of OUTCOMES) if (counts[outcome] > 0) set({ balancer, endpoint: e.id, outcome }, counts[outcome]);
    }
  });
  metrics.counter('picks_total', 'Requests sent to each endpoint.', perEndpoint, (set, balancer, s) => {
    for (const e of s.endpoints) if (e.picks > 0) set({ balancer, endpoint: e.id }, e.picks);
  });
  metrics.counter('ejections_total', 'Outlier ejections of each endpoint.', perEndpoint, (set, balancer, s) => {
    for (const e of s.endpoints) if (e.ejections > 0) set({ balancer, endpoint: e.id }, e.ejections);
  });
  metrics.gauge('in_flight', 'Requests picked and not yet done, by endpoint.', perEndpoint, (set, balancer, s) => {
    for (const e of s.endpoints) set({ balancer, endpoint: e.id }, e.inFlight);
  });
  metrics.gauge('state', 'Endpoint state: 1 for the current one, 0 for the others.', [...perEndpoint, 'state'], (set, balancer, s) => {
    for (const e of s.endpoints) for (const state of STATES) set({ balancer, endpoint: e.id, state }, e.state === state ? 1 : 0);
  });
  metrics.gauge('latency_seconds', 'Time-decayed average latency of each endpoint, in seconds.', perEndpoint, (set, balancer, s) => {
    for (const e of s.endpoints) if (e.latencyMs !== null) set({ balancer, endpoint: e.id }, e.latencyMs / 1_000);
  });
  metrics.gauge('error_rate', 'Failures / requests over the error-rate window, by endpoint.', perEndpoint, (set, balancer, s) => {
    for (const e of s.endpoints) set({ balancer, endpoint: e.id }, e.errorRate);
  });
  metrics.gauge('panic', '1 while too few endpoints are healthy and the balancer uses them all.', ['balancer'], (set, balancer, s) => {
    set({ balancer }, s.panic ? 1 : 0);
  });
  metrics.counter('no_endpoint_total', 'Picks that found no endpoint available.', ['balancer'], (set, balancer, s) => {
    if (s.noEndpoint > 0) set({ balancer }, s.noEndpoint);
  });

  const close = (): void => metrics.close();
  return { close, [Symbol.dispose]: close };
}
