import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LoadBalancer, roundRobin } from './index.ts';
import { loadBalancerMetrics } from './prometheus.ts';
import { endpoints, manualClock } from './testing/helpers.ts';

describe('loadBalancerMetrics', () => {
  it('exports per-endpoint counters and gauges read from stats() at scrape time', async () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(10), strategy: roundRobin(), clock });
    const register = new Registry();
    loadBalancerMetrics(register, { api: lb });
    for (let i = 0; i < 20; i++) {
      const h = lb.pick();
      h.done({ ok: h.endpoint.id !== 'a', latencyMs: 250 });
    }
    lb.pick(); // a, in flight
    lb.pick().done({ ok: true, cancelled: true }); // b
    const text = await register.metrics();
    expect(text).toContain('ballast_load_balancer_requests_total{balancer="api",endpoint="a",outcome="failure"} 2');
    expect(text).toContain('ballast_load_balancer_requests_total{balancer="api",endpoint="b",outcome="success"} 2');
    expect(text).toContain('ballast_load_balancer_requests_total{balancer="api",endpoint="b",outcome="cancelled"} 1');
    expect(text).toContain('ballast_load_balancer_picks_total{balancer="api",endpoint="a"} 3');
    expect(text).toContain('ballast_load_balancer_in_flight{balancer="api",endpoint="a"} 1');
    expect(text).toContain('ballast_load_balancer_in_flight{balancer="api",endpoint="b"} 0');
    expect(text).toContain('ballast_load_balancer_latency_seconds{balancer="api",endpoint="b"} 0.25');
    expect(text).toContain('ballast_load_balancer_error_rate{balancer="api",endpoint="a"} 1');
    expect(text).toContain('ballast_load_balancer_state{balancer="api",endpoint="a",state="healthy"} 1');
    expect(text).toContain('ballast_load_balancer_panic{balancer="api"} 0');
    // Scraped again later: the values follow the balancer.
    for (let i = 0; i < 30; i++) {
      const h = lb.pick();
      h.done({ ok: h.endpoint.id !== 'a' });
    }
    const later = await register.metrics();
    expect(later).toContain('ballast_load_balancer_state{balancer="api",endpoint="a",state="ejected"} 1');
    expect(later).toContain('ballast_load_balancer_ejections_total{balancer="api",endpoint="a"} 1');
  });

  it('labels a single balancer "default" and unregisters on close', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    const register = new Registry();
    const metrics = loadBalancerMetrics(register, lb, { prefix: 'lb_' });
    lb.pick().done({ ok: true });
    expect(await register.metrics()).toContain('lb_picks_total{balancer="default",endpoint="a"} 1');
    metrics.close();
    metrics.close();
    expect((await register.metrics()).trim()).toBe('');
    // The names are free again.
    loadBalancerMetrics(register, lb, { prefix: 'lb_' }).close();
  });
});
