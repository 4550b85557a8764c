import { describe, expect, it } from 'vitest';
import type { FailureDetector } from './detector.ts';
import { FixedTimeoutDetector } from './fixed-timeout.ts';
import { PhiAccrualDetector } from './phi-accrual.ts';
import { measureQuality } from './quality.ts';

describe('measureQuality', () => {
  it('measures the detection time of a fixed timeout exactly on a loss-free, jitter-free network', () => {
    const report = measureQuality(() => new FixedTimeoutDetector({ timeoutMs: 2500 }), {
      nodes: 200,
      jitter: 0,
      lossRate: 0,
      durationMs: 60_000,
    });
    // The crash falls uniformly within an interval: detection = timeout - time since the last heartbeat.
    expect(report.mistakes).toBe(0);
    expect(report.queryAccuracy).toBe(1);
    expect(report.mistakeRecurrenceMs).toBe(Number.POSITIVE_INFINITY);
    expect(report.detectionTimeMs.max).toBeLessThanOrEqual(2500 + 1);
    expect(report.detectionTimeMs.p50).toBeGreaterThan(1500);
    expect(report.detectionTimeMs.mean).toBeGreaterThan(1800);
    expect(report.detectionTimeMs.mean).toBeLessThan(2200);
    // Uniform over one interval: standard deviation 1000 / √12 ≈ 289 ms.
    expect(report.detectionTimeMs.stdDev).toBeGreaterThan(250);
    expect(report.detectionTimeMs.stdDev).toBeLessThan(330);
    expect(report.nodes).toBe(200);
    expect(report.observedMs).toBeGreaterThan(200 * 59_000);
  });

  it('counts every lost heartbeat as a mistake when the timeout is shorter than two intervals', () => {
    const report = measureQuality(() => new FixedTimeoutDetector({ timeoutMs: 1500 }), {
      nodes: 50,
      jitter: 0,
      lossRate: 0.1,
      durationMs: 600_000,
    });
    const heartbeats = (50 * 600_000) / 1000;
    // Each loss (but those followed by another) opens a 500 ms mistake.
    expect(report.mistakes).toBeGreaterThan(heartbeats * 0.1 * 0.9 * 0.85);
    expect(report.mistakes).toBeLessThan(heartbeats * 0.1 * 0.9 * 1.15);
    expect(report.mistakeDurationMs).toBeGreaterThan(499);
    expect(report.mistakeDurationMs).toBeLessThan(1001);
    expect(report.mistakesPerNodeDay).toBeCloseTo(report.mistakesPerNodeHour * 24, 6);
    expect(report.queryAccuracy).toBeLessThan(1);
    expect(report.mistakeRecurrenceMs).toBeCloseTo(report.observedMs / report.mistakes, 6);
  });

  it('ranks thresholds as theory says: lower phi detects sooner and errs more', () => {
    const scenario = { nodes: 200, durationMs: 3_600_000, jitter: 0.2, lossRate: 0.01 };
    const low = measureQuality(() => new PhiAccrualDetector({ threshold: 1, acceptableHeartbeatPauseMs: 0 }), scenario);
    const high = measureQuality(() => new PhiAccrualDetector({ threshold: 8, acceptableHeartbeatPauseMs: 0 }), scenario);
    expect(low.detectionTimeMs.mean).toBeLessThan(high.detectionTimeMs.mean);
    expect(low.mistakes).toBeGreaterThan(high.mistakes);
    expect(low.queryAccuracy).toBeLessThan(high.queryAccuracy);
  });

  it('is deterministic for a seed and pools several scenarios', () => {
    const make = (): FailureDetector => new PhiAccrualDetector({ threshold: 3, acceptableHeartbeatPauseMs: 0 });
    const a = measureQuality(make, { nodes: 20, durationMs: 600_000, seed: 7 });
    const b = measureQuality(make, { nodes: 20, durationMs: 600_000, seed: 7 });
    expect(a).toEqual(b);
    const pooled = measureQuality(make, [
      { nodes: 20, durationMs: 600_000, seed: 7 },
      { nodes: 10, durationMs: 600_000, seed: 8 },
    ]);
    expect(pooled.nodes).toBe(30);
    expect(pooled.mistakes).toBeGreaterThanOrEqual(a.mistakes);
  });

  it('counts crashes that are never suspected', () => {
    const never: FailureDetector = {
      threshold: 1,
      isMonitoring: true,
      heartbeat: () => undefined,
      suspicion: () => 0,
      isAvailable: () => true,
      reset: () => undefined,
    };
    const report = measureQuality(() => never, { nodes: 3, durationMs: 10_000, maxDetectionMs: 5000 });
    expect(report.undetected).toBe(3);
    expect(report.detectionTimeMs.mean).toBeNaN();
  });

  it.each([
    ['nodes', { nodes: 0 }],
    ['jitter', { jitter: 1.5 }],
    ['lossRate', { lossRate: 1 }],
    ['durationMs', { durationMs: 10 }],
  ])('rejects an invalid %s', (option, scenario) => {
    expect(() => measureQuality(() => new FixedTimeoutDetector(), scenario)).toThrow(
      expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', option }),
    );
  });
});
