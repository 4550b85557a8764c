import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConcurrencyLimiter } from './limiter.ts';
import { BackpressureMetrics } from './prometheus.ts';
import { KeyedRateLimiter } from './rate-limit.ts';
import { AdaptiveThrottle } from './throttle.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('BackpressureMetrics', () => {
  it("keeps a throttle's admitted counter monotonic once its window slides", async () => {
    vi.useFakeTimers();
    const registry = new Registry();
    const metrics = new BackpressureMetrics({ registry });
    const throttle = new AdaptiveThrottle({ name: 'billing', windowMs: 1000, buckets: 10 });
    metrics.track(throttle);
    for (let i = 0; i < 3; i++) await throttle.run(() => 'ok');
    expect(await registry.metrics()).toContain('ballast_backpressure_admitted_total{limiter="billing"} 3');
    vi.advanceTimersByTime(5000);
    expect(await registry.metrics()).toContain('ballast_backpressure_admitted_total{limiter="billing"} 3');
    metrics.close();
  });

  it('exports in-flight, queue depth, limit, admitted and shed by reason', async () => {
    const registry = new Registry();
    const metrics = new BackpressureMetrics({ registry });
    const limiter = new ConcurrencyLimiter({ limit: 2, maxQueue: 1, name: 'api' });
    const perKey = new KeyedRateLimiter({ limit: 1, windowMs: 60_000, name: 'per-key' });
    const throttle = new AdaptiveThrottle({ name: 'billing' });
    metrics.track(limiter);
    const untrack = metrics.track(perKey);
    metrics.track(throttle);
    await limiter.acquire();
    await limiter.acquire();
    const queued = limiter.acquire();
    await limiter.acquire().catch(() => undefined);
    perKey.consume('a');
    perKey.consume('a');
    const text = await registry.metrics();
    expect(text).toContain('ballast_backpressure_inflight{limiter="api"} 2');
    expect(text).toContain('ballast_backpressure_queue_depth{limiter="api"} 1');
    expect(text).toContain('ballast_backpressure_limit{limiter="api"} 2');
    expect(text).toContain('ballast_backpressure_admitted_total{limiter="api"} 2');
    expect(text).toContain('ballast_backpressure_shed_total{limiter="api",reason="queueFull"} 1');
    expect(text).toContain('ballast_backpressure_shed_total{limiter="per-key",reason="rateLimited"} 1');
    expect(text).toContain('ballast_backpressure_admitted_total{limiter="billing"} 0');
    untrack();
    expect(await registry.metrics()).not.toContain('per-key');
    limiter.close();
    await queued.catch(() => undefined);
    metrics.close();
    expect(await registry.metrics()).toBe('\n');
  });
});
