import type { BodyBudget } from '@ballast/app-shared';
import { requestMetrics } from '@ballast/app-shared';
import type { ConcurrencyLimiter } from '@ballast/backpressure';
import { Counter, Gauge, type Registry } from 'prom-client';
import type { UpstreamPool } from './upstreams.ts';

/** The gateway's metrics, registered in `registry`. */
export interface GatewayMetrics {
  readonly requests: ReturnType<typeof requestMetrics<'upstream'>>;
  readonly retries: Counter;
  readonly throttled: Counter;
  readonly rateLimited: Counter;
}

/**
 * `ballast_gateway_requests_total{upstream,status}`, `ballast_gateway_request_seconds{upstream}`,
 * `ballast_gateway_retries_total`, `ballast_gateway_throttled_total`, `ballast_gateway_rate_limited_total`, and gauges read at
 * scrape time: `ballast_gateway_upstream_up{upstream}`, `ballast_gateway_circuit_open{upstream}`,
 * `ballast_gateway_inflight`, `ballast_gateway_body_bytes`.
 */
export function gatewayMetrics(registry: Registry, pool: UpstreamPool, limiter: ConcurrencyLimiter, bodies: BodyBudget): GatewayMetrics {
  const registers = [registry];
  new Gauge({
    name: 'ballast_gateway_upstream_up',
    help: '1 while an upstream is in rotation (not down, ejected or draining)',
    labelNames: ['upstream'],
    registers,
    collect() {
      for (const e of pool.balancer.stats().endpoints) this.set({ upstream: e.id }, e.state === 'healthy' || e.state === 'warming' ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ballast_gateway_circuit_open',
    help: '1 while an upstream circuit is open or half-open',
    labelNames: ['upstream'],
    registers,
    collect() {
      for (const [id, b] of pool.breakers) this.set({ upstream: id }, b.state === 'closed' ? 0 : 1);
    },
  });
  new Gauge({
    name: 'ballast_gateway_inflight',
    help: 'Requests being forwarded',
    registers,
    collect() {
      this.set(limiter.inflight);
    },
  });
  new Gauge({
    name: 'ballast_gateway_body_bytes',
    help: 'Bytes of request bodies held in memory',
    registers,
    collect() {
      this.set(bodies.stats().usedBytes);
    },
  });
  return {
    requests: requestMetrics(registry, 'ballast_gateway', 'Requests', ['upstream']),
    retries: new Counter({ name: 'ballast_gateway_retries_total', help: 'Requests resent to another upstream', registers }),
    throttled: new Counter({
      name: 'ballast_gateway_throttled_total',
      help: 'Requests turned away by adaptive throttling before reaching an API server',
      registers,
    }),
    rateLimited: new Counter({
      name: 'ballast_gateway_rate_limited_total',
      help: 'Requests refused because their client address was over its request rate',
      registers,
    }),
  };
}
