import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { FixedTimeoutDetector } from './fixed-timeout.ts';
import { HeartbeatMonitor } from './monitor.ts';
import { PhiAccrualDetector, phi } from './phi-accrual.ts';
import { failureDetectorMetrics } from './prometheus.ts';

/** A clock the test moves by hand. */
function manualClock(): { now(): number; advance(ms: number): void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

/** The value of one sample in Prometheus text, or undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  if (line === undefined) return undefined;
  const value = line.slice(series.length + 1);
  return value === '+Inf' ? Number.POSITIVE_INFINITY : Number(value);
}

describe('failureDetectorMetrics', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("exports each node's phi, silence, state and heartbeats, read at scrape time", async () => {
    const clock = manualClock();
    const options = { threshold: 8, acceptableHeartbeatPauseMs: 1000, firstHeartbeatEstimateMs: 500, minStdDeviationMs: 100 };
    const monitor = new HeartbeatMonitor({ clock, detector: () => new PhiAccrualDetector(options), deadAfterMs: 5000 });
    const register = new Registry();
    failureDetectorMetrics(register, { upstreams: monitor });
    monitor.add('api-1');
    monitor.add('api-2');
    for (let i = 0; i < 10; i++) {
      clock.advance(500);
      monitor.heartbeat('api-1');
      monitor.heartbeat('api-2');
    }
    clock.advance(1200); // api-1 and api-2 silent for 1.2 s
    monitor.heartbeat('api-2');
    let text = await register.metrics();
    // The seed intervals (375, 625) and ten of 500 ms: mean 500, std 51 floored to 100.
    const expected = phi(1200, 500 + 1000, 100);
    expect(sample(text, 'ballast_failure_detector_phi{monitor="upstreams",node="api-1"}')).toBeCloseTo(expected, 10);
    expect(expected).toBeGreaterThan(0);
    expect(sample(text, 'ballast_failure_detector_phi{monitor="upstreams",node="api-2"}')).toBeLessThan(1e-6);
    expect(sample(text, 'ballast_failure_detector_silence_seconds{monitor="upstreams",node="api-1"}')).toBe(1.2);
    expect(sample(text, 'ballast_failure_detector_heartbeats_total{monitor="upstreams",node="api-1"}')).toBe(10);
    expect(sample(text, 'ballast_failure_detector_heartbeats_total{monitor="upstreams",node="api-2"}')).toBe(11);
    expect(sample(text, 'ballast_failure_detector_state{monitor="upstreams",node="api-1",state="alive"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_state{monitor="upstreams",node="api-1",state="suspect"}')).toBe(0);
    expect(sample(text, 'ballast_failure_detector_nodes{monitor="upstreams",state="alive"}')).toBe(2);

    // api-1 stays silent: suspected (phi ≥ 8), then dead after 5 s, then back.
    clock.advance(1000);
    monitor.check();
    text = await register.metrics();
    expect(sample(text, 'ballast_failure_detector_phi{monitor="upstreams",node="api-1"}')).toBeGreaterThanOrEqual(8);
    expect(sample(text, 'ballast_failure_detector_state{monitor="upstreams",node="api-1",state="suspect"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_nodes{monitor="upstreams",state="suspect"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_suspicions_total{monitor="upstreams"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_transitions_total{monitor="upstreams",node="api-1",from="alive",to="suspect"}')).toBe(1);
    for (let i = 0; i < 10; i++) {
      clock.advance(500); // api-2 keeps beating
      monitor.heartbeat('api-2');
      monitor.check();
    }
    monitor.heartbeat('api-1');
    text = await register.metrics();
    expect(sample(text, 'ballast_failure_detector_transitions_total{monitor="upstreams",node="api-1",from="suspect",to="dead"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_transitions_total{monitor="upstreams",node="api-1",from="dead",to="alive"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_transitions_total{monitor="upstreams",node="api-2",from="alive",to="suspect"}')).toBe(
      undefined,
    );
    expect(sample(text, 'ballast_failure_detector_state{monitor="upstreams",node="api-1",state="alive"}')).toBe(1);
    expect(sample(text, 'ballast_failure_detector_heartbeats_total{monitor="upstreams",node="api-1"}')).toBe(11);
    monitor.close();
  });

  it('labels a single monitor "default", drops removed nodes, and unregisters on close', async () => {
    const clock = manualClock();
    const monitor = new HeartbeatMonitor({ clock, detector: () => new FixedTimeoutDetector({ timeoutMs: 1000 }) });
    const register = new Registry();
    const metrics = failureDetectorMetrics(register, monitor, { prefix: 'fd_' });
    monitor.add('a');
    monitor.add('b');
    monitor.remove('b');
    clock.advance(2000);
    monitor.check();
    const text = await register.metrics();
    expect(sample(text, 'fd_state{monitor="default",node="a",state="suspect"}')).toBe(1);
    expect(sample(text, 'fd_transitions_total{monitor="default",node="a",from="alive",to="suspect"}')).toBe(1);
    expect(text).not.toContain('node="b"');
    metrics.close();
    metrics.close();
    expect((await register.metrics()).trim()).toBe('');
    // Closed: transitions are no longer counted, and the names are free again.
    monitor.heartbeat('a');
    const again = failureDetectorMetrics(register, monitor, { prefix: 'fd_' });
    expect(await register.metrics()).not.toContain('fd_transitions_total{');
    again.close();
    monitor.close();
  });
});
