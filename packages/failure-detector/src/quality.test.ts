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

  /** A detector that never suspects and records when heartbeats arrive. */
  const recorder = (arrivals: number[][]): (() => FailureDetector) => {
    return () => {
      const times: number[] = [];
      arrivals.push(times);
      return {
        threshold: 1,
        isMonitoring: true,
        heartbeat: (at = 0) => void times.push(at),
        suspicion: () => 0,
        isAvailable: () => true,
        reset: () => undefined,
      };
    };
  };
  const intervalsOf = (arrivals: number[][]): number[] =>
    arrivals.flatMap((times) => times.slice(1).map((t, i) => t - (times[i] as number)));
  const meanAndDeviation = (values: number[]): [number, number] => {
    const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
    return [mean, Math.sqrt(values.reduce((sum, v) => sum + (v - mean) ** 2, 0) / values.length)];
  };

  it('draws lognormal intervals with the mean and deviation of the uniform ones, but no upper bound', () => {
    const scenario = { nodes: 20, durationMs: 1_800_000, jitter: 0.2, lossRate: 0 };
    const uniform: number[][] = [];
    const lognormal: number[][] = [];
    measureQuality(recorder(uniform), scenario);
    measureQuality(recorder(lognormal), { ...scenario, jitterDistribution: 'lognormal' });
    const [uMean, uDeviation] = meanAndDeviation(intervalsOf(uniform));
    const [lMean, lDeviation] = meanAndDeviation(intervalsOf(lognormal));
    expect(uMean).toBeCloseTo(1000, -1);
    expect(lMean).toBeCloseTo(1000, -1);
    expect(uDeviation).toBeCloseTo(200 / Math.sqrt(3), -1);
    expect(lDeviation).toBeCloseTo(200 / Math.sqrt(3), -1);
    expect(Math.max(...intervalsOf(uniform))).toBeLessThanOrEqual(1200);
    expect(Math.max(...intervalsOf(lognormal))).toBeGreaterThan(1400);
  });

  it('holds heartbeats up, delivers them in arrival order and lets those in flight arrive after the crash', () => {
    const arrivals: number[][] = [];
    const report = measureQuality(recorder(arrivals), {
      nodes: 20,
      durationMs: 600_000,
      jitter: 0,
      lossRate: 0,
      delayRate: 0.2,
      delayMs: 2000,
    });
    const intervals = intervalsOf(arrivals);
    expect(intervals.every((interval) => interval >= 0)).toBe(true);
    // Held-up heartbeats overtaken by later ones shorten intervals below the 1 s cadence.
    expect(intervals.filter((interval) => interval < 999).length).toBeGreaterThan(100);
    expect(intervals.filter((interval) => interval > 1001).length).toBeGreaterThan(100);
    // Every heartbeat arrives: about 600 per node.
    expect(arrivals.every((times) => times.length >= 599 && times.length <= 602)).toBe(true);
    expect(report.mistakes).toBe(0);
  });

  it('delivers heartbeats still in flight at the crash, which delays detection', () => {
    // Nearly every heartbeat is held up ~3 s: some sent before the crash arrive after it,
    // so the 20 s timeout runs from an arrival later than the crash.
    const report = measureQuality(() => new FixedTimeoutDetector({ timeoutMs: 20_000 }), {
      nodes: 50,
      durationMs: 60_000,
      jitter: 0,
      lossRate: 0,
      delayRate: 0.99,
      delayMs: 3000,
    });
    expect(report.mistakes).toBe(0);
    expect(report.undetected).toBe(0);
    expect(report.detectionTimeMs.mean).toBeGreaterThan(20_000);
  });

  it('changes conditions phase by phase, each node at its own point of the cycle', () => {
    const arrivals: number[][] = [];
    measureQuality(recorder(arrivals), {
      nodes: 20,
      durationMs: 3_600_000,
      jitter: 0,
      lossRate: 0,
      phases: [{ durationMs: 600_000 }, { durationMs: 600_000, lossRate: 0.5 }],
    });
    // Half the time, half the heartbeats are lost: 3/4 of them arrive.
    const received = arrivals.reduce((sum, times) => sum + times.length, 0);
    expect(received / (20 * 3600)).toBeCloseTo(0.75, 1);
    // With a random start in the cycle, the nodes do not all lose heartbeats at the same moments.
    const firstGaps = arrivals.map((times) => times.findIndex((t, i) => i > 0 && t - (times[i - 1] as number) > 1500));
    expect(new Set(firstGaps).size).toBeGreaterThan(5);
  });

  it('reports each node detection time in simulation order, paired across detectors', () => {
    const scenario = { nodes: 50, durationMs: 600_000, seed: 3 };
    const short = measureQuality(() => new FixedTimeoutDetector({ timeoutMs: 3000 }), scenario);
    const long = measureQuality(() => new FixedTimeoutDetector({ timeoutMs: 4000 }), scenario);
    expect(short.nodeDetectionTimesMs).toHaveLength(50);
    // Same heartbeats node by node: a timeout 1 s longer detects each crash 1 s later.
    long.nodeDetectionTimesMs.forEach((d, i) => {
      expect(d - (short.nodeDetectionTimesMs[i] as number)).toBeCloseTo(1000, -1);
    });
  });

  it.each([
    ['nodes', { nodes: 0 }],
    ['jitterDistribution', { jitterDistribution: 'pareto' as 'uniform' }],
    ['delayRate', { delayRate: -0.1 }],
    ['delayMs', { delayMs: Number.NaN }],
    ['phases[1].lossRate', { phases: [{ durationMs: 1000 }, { durationMs: 1000, lossRate: 2 }] }],
    ['phases[0].durationMs', { phases: [{ durationMs: 0 }] }],
    ['jitter', { jitter: 1.5 }],
    ['lossRate', { lossRate: 1 }],
    ['durationMs', { durationMs: 10 }],
  ])('rejects an invalid %s', (option, scenario) => {
    expect(() => measureQuality(() => new FixedTimeoutDetector(), scenario)).toThrow(
      expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', option }),
    );
  });
});
