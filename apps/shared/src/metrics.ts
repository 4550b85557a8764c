import type { Context } from 'hono';
import { Counter, Histogram, type Registry } from 'prom-client';

/** Buckets of every request-duration histogram, seconds: 5 ms to 10 s. */
export const DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** A service's request counter and duration histogram. */
export interface RequestMetrics<L extends string> {
  /** `<prefix>_requests_total{…labels, status}`. */
  readonly requests: Counter<L | 'status'>;
  /** `<prefix>_request_seconds{…labels}`: from the request's arrival to its answer's headers. */
  readonly duration: Histogram<L>;
}

/**
 * The one definition of a service's request metrics: a counter by status (and `labels`)
 * and a duration histogram with {@link DURATION_BUCKETS}, registered in `registry`.
 * @param prefix e.g. `ballast_gateway`.
 */
export function requestMetrics<L extends string = never>(
  registry: Registry,
  prefix: string,
  what: string,
  labels: readonly L[] = [],
): RequestMetrics<L> {
  return {
    requests: new Counter({
      name: `${prefix}_requests_total`,
      help: `${what} by status${labels.length > 0 ? ` and ${labels.join(', ')}` : ''}`,
      labelNames: [...labels, 'status'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: `${prefix}_request_seconds`,
      help: `${what}: time to the answer's headers${labels.length > 0 ? `, by ${labels.join(', ')}` : ''}`,
      labelNames: [...labels],
      buckets: [...DURATION_BUCKETS],
      registers: [registry],
    }),
  };
}

/** The one `/metrics` handler: the registry in Prometheus text format. */
export function metricsHandler(registry: Registry): (c: Context) => Promise<Response> {
  return async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType });
}
