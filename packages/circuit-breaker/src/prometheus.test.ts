import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BreakerRegistry, CircuitBreaker } from './index.ts';
import { circuitBreakerMetrics } from './prometheus.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('circuitBreakerMetrics', () => {
  it('exports calls by outcome, a state gauge and a latency histogram for one breaker', async () => {
    const register = new Registry();
    const breaker = new CircuitBreaker<number>({ name: 'db', volumeThreshold: 2, isFailure: (n) => n < 0 });
    const metrics = circuitBreakerMetrics(register, breaker);
    await breaker.execute(async () => 1);
    await breaker.execute(async () => -1);
    await breaker.execute(() => Promise.reject(new Error('x'))).catch(() => undefined);
    await breaker.execute(async () => 1).catch(() => undefined);
    const text = await register.metrics();
    expect(text).toContain('ballast_circuit_breaker_calls_total{breaker="db",outcome="success"} 1');
    expect(text).toContain('ballast_circuit_breaker_calls_total{breaker="db",outcome="result"} 1');
    expect(text).toContain('ballast_circuit_breaker_calls_total{breaker="db",outcome="error"} 1');
    expect(text).toContain('ballast_circuit_breaker_calls_total{breaker="db",outcome="rejected"} 1');
    expect(text).toContain('ballast_circuit_breaker_state{breaker="db",state="open"} 1');
    expect(text).toContain('ballast_circuit_breaker_state{breaker="db",state="closed"} 0');
    expect(text).toContain('ballast_circuit_breaker_call_duration_seconds_count{breaker="db"} 3');
    expect(text).toContain('ballast_circuit_breaker_in_flight{breaker="db"} 0');
    metrics.close();
    expect(await register.metrics()).toBe('\n');
    breaker.close();
  });

  it('follows a registry: new breakers appear, evicted ones disappear', async () => {
    const register = new Registry();
    const registry = new BreakerRegistry({ maxBreakers: 1 });
    const metrics = circuitBreakerMetrics(register, registry, { prefix: 'gw_cb_' });
    await registry.get('upstream-a').execute(async () => 'ok');
    let text = await register.metrics();
    expect(text).toContain('gw_cb_calls_total{breaker="upstream-a",outcome="success"} 1');
    expect(text).toContain('gw_cb_call_duration_seconds_count{breaker="upstream-a"} 1');
    await registry.get('upstream-b').execute(async () => 'ok');
    text = await register.metrics();
    expect(text).not.toContain('upstream-a');
    expect(text).toContain('gw_cb_state{breaker="upstream-b",state="closed"} 1');
    metrics[Symbol.dispose]();
    registry.close();
  });

  it("labels a registry's breakers by key, even when their options give them one name", async () => {
    const register = new Registry();
    const registry = new BreakerRegistry({ breaker: { name: 'upstream' } });
    const metrics = circuitBreakerMetrics(register, registry);
    registry.get('a').trip();
    await registry.get('b').execute(async () => 'ok');
    const text = await register.metrics();
    expect(text).toContain('ballast_circuit_breaker_state{breaker="a",state="open"} 1');
    expect(text).toContain('ballast_circuit_breaker_state{breaker="b",state="closed"} 1');
    expect(text).toContain('ballast_circuit_breaker_call_duration_seconds_count{breaker="b"} 1');
    expect(text).not.toContain('breaker="upstream"');
    metrics.close();
    registry.close();
  });
});
