import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PhiAccrualDetector, phi } from './phi-accrual.ts';

/**
 * A line-by-line transcription of Akka's PhiAccrualFailureDetector and HeartbeatHistory
 * (akka-remote), with the history kept as a plain array and its statistics recomputed
 * from the sums exactly as the Scala code does. The detector under test must agree.
 */
class AkkaReference {
  readonly #threshold: number;
  readonly #maxSampleSize: number;
  readonly #minStdDeviation: number;
  readonly #acceptablePause: number;
  readonly #firstHeartbeat: { intervals: number[]; sum: number; squares: number };
  #history: { intervals: number[]; sum: number; squares: number };
  #timestamp: number | undefined;

  constructor(threshold: number, maxSampleSize: number, minStdDeviation: number, acceptablePause: number, firstEstimate: number) {
    this.#threshold = threshold;
    this.#maxSampleSize = maxSampleSize;
    this.#minStdDeviation = minStdDeviation;
    this.#acceptablePause = acceptablePause;
    const mean = firstEstimate;
    const stdDeviation = Math.trunc(mean / 4);
    this.#firstHeartbeat = this.#append(this.#append({ intervals: [], sum: 0, squares: 0 }, mean - stdDeviation), mean + stdDeviation);
    this.#history = this.#firstHeartbeat;
  }

  #append(
    h: { intervals: number[]; sum: number; squares: number },
    interval: number,
  ): { intervals: number[]; sum: number; squares: number } {
    if (h.intervals.length < this.#maxSampleSize) {
      return { intervals: [...h.intervals, interval], sum: h.sum + interval, squares: h.squares + interval * interval };
    }
    const [head, ...rest] = h.intervals as [number, ...number[]];
    return this.#append({ intervals: rest, sum: h.sum - head, squares: h.squares - head * head }, interval);
  }

  heartbeat(timestamp: number): void {
    if (this.#timestamp === undefined) this.#history = this.#firstHeartbeat;
    else if (this.isAvailable(timestamp)) this.#history = this.#append(this.#history, timestamp - this.#timestamp);
    this.#timestamp = timestamp;
  }

  isAvailable(timestamp: number): boolean {
    return this.phi(timestamp) < this.#threshold;
  }

  phi(timestamp: number): number {
    if (this.#timestamp === undefined) return 0;
    const timeDiff = timestamp - this.#timestamp;
    const n = this.#history.intervals.length;
    const mean = this.#history.sum / n;
    const variance = this.#history.squares / n - mean * mean;
    const stdDeviation = Math.max(Math.sqrt(variance), this.#minStdDeviation);
    const m = mean + this.#acceptablePause;
    const y = (timeDiff - m) / stdDeviation;
    const e = Math.exp(-y * (1.5976 + 0.070566 * y * y));
    return timeDiff > m ? -Math.log10(e / (1.0 + e)) : -Math.log10(1.0 - 1.0 / (1.0 + e));
  }
}

describe('phi()', () => {
  // Reference values of Akka's formula, and the expectations of Akka's own spec
  // ("return realistic phi values": mean 1000, deviation 100, ± 0.1).
  it.each([
    [0, 0, 0],
    [500, 2.1768922219645073e-8, 0],
    [1000, 0.3010299956639812, 0.3],
    [1200, 1.6428278854871123, 1.6],
    [1400, 4.736694582705181, 4.7],
    [1600, 10.782600858295707, 10.8],
    [1700, 15.368525622645256, 15.3],
  ])('phi(%i ms, mean 1000, sd 100) = %f', (elapsed, reference, akkaSpec) => {
    expect(phi(elapsed, 1000, 100)).toBeCloseTo(reference, 12);
    expect(Math.abs(phi(elapsed, 1000, 100) - akkaSpec)).toBeLessThanOrEqual(0.1);
  });

  it('keeps precision far in the tail, where 1 - cdf would round to 0', () => {
    // y = 10: -log10 of the logistic tail, computed in closed form.
    const expected = (10 * (1.5976 + 0.070566 * 100)) / Math.LN10 + Math.log10(1 + Math.exp(-10 * (1.5976 + 7.0566)));
    expect(phi(2000, 1000, 100)).toBeCloseTo(expected, 9);
    // Beyond what a double can hold, phi is Infinity, as in Akka.
    expect(phi(100_000, 1000, 100)).toBe(Number.POSITIVE_INFINITY);
  });

  it('grows with the silence', () => {
    fc.assert(
      fc.property(fc.double({ min: 0, max: 10_000, noNaN: true }), fc.double({ min: 0, max: 10_000, noNaN: true }), (a, b) => {
        const [lo, hi] = a < b ? [a, b] : [b, a];
        return phi(lo, 1000, 200) <= phi(hi, 1000, 200);
      }),
    );
  });
});

describe('PhiAccrualDetector', () => {
  it('has Akka Cluster defaults', () => {
    const d = new PhiAccrualDetector();
    expect([d.threshold, d.maxSampleSize, d.minStdDeviationMs, d.acceptableHeartbeatPauseMs, d.firstHeartbeatEstimateMs]).toEqual([
      8, 1000, 100, 3000, 1000,
    ]);
  });

  it('is available with phi 0 before the first heartbeat', () => {
    const d = new PhiAccrualDetector();
    expect(d.isMonitoring).toBe(false);
    expect(d.suspicion(1e9)).toBe(0);
    expect(d.isAvailable(1e9)).toBe(true);
  });

  it('bases phi on the first-heartbeat estimate after one heartbeat (Akka spec)', () => {
    const d = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 10 });
    d.heartbeat(0);
    expect(d.isMonitoring).toBe(true);
    // Seeded with 750 and 1250: mean 1000, deviation 250.
    expect(d.meanIntervalMs).toBe(1000);
    expect(d.stdDeviationMs).toBe(250);
    expect(d.suspicion(1000)).toBeCloseTo(0.3010299956639812, 12);
    expect(d.suspicion(2000)).toBeCloseTo(4.736694582705181, 12);
    expect(d.suspicion(3000)).toBeGreaterThan(15);
  });

  it('uses integer division for the seed deviation, as Akka does', () => {
    const d = new PhiAccrualDetector({ firstHeartbeatEstimateMs: 1003 });
    d.heartbeat(0);
    // 1003 / 4 = 250 in whole milliseconds: seeds 753 and 1253.
    expect(d.meanIntervalMs).toBe(1003);
    expect(d.stdDeviationMs).toBe(250);
  });

  it('marks a node unavailable when heartbeats stop and available when they resume (Akka spec)', () => {
    const d = new PhiAccrualDetector({ threshold: 3, acceptableHeartbeatPauseMs: 0, minStdDeviationMs: 10 });
    let t = 0;
    for (const interval of [0, 1000, 100, 100]) d.heartbeat((t += interval));
    expect(d.isAvailable(t)).toBe(true);
    expect(d.isAvailable(t + 7000)).toBe(false);
    d.heartbeat((t += 7000));
    expect(d.isAvailable(t + 100)).toBe(true);
  });

  it('tolerates the acceptable pause (Akka spec)', () => {
    const d = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 3000 });
    let t = 0;
    for (let i = 0; i < 6; i++) d.heartbeat((t += 1000));
    expect(d.isAvailable(t + 4000)).toBe(true);
    expect(d.isAvailable(t + 5500)).toBe(false);
  });

  it('does not record the interval of a heartbeat that arrives while suspected', () => {
    const d = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0 });
    let t = 0;
    for (let i = 0; i < 10; i++) d.heartbeat((t += 1000));
    const mean = d.meanIntervalMs;
    d.heartbeat((t += 60_000));
    expect(d.meanIntervalMs).toBe(mean);
    d.heartbeat((t += 1100));
    expect(d.meanIntervalMs).toBeCloseTo((mean * 11 + 1100) / 12, 9);
  });

  it('keeps only maxSampleSize intervals', () => {
    const d = new PhiAccrualDetector({ maxSampleSize: 3 });
    let t = 0;
    for (const interval of [0, 100, 200, 300, 400]) d.heartbeat((t += interval));
    // The seed (750, 1250) has been pushed out by 200, 300, 400.
    expect(d.meanIntervalMs).toBe(300);
  });

  it('starts again from the seed after reset()', () => {
    const d = new PhiAccrualDetector();
    d.heartbeat(0);
    d.heartbeat(400);
    d.reset();
    expect(d.isMonitoring).toBe(false);
    expect(d.suspicion(10_000)).toBe(0);
    d.heartbeat(10_000);
    expect(d.meanIntervalMs).toBe(1000);
  });

  it('reads its clock when no time is given', () => {
    let now = 0;
    const d = new PhiAccrualDetector({ clock: { now: () => now } });
    d.heartbeat();
    now = 1000;
    d.heartbeat();
    now = 10_000;
    expect(d.suspicion()).toBe(d.suspicion(10_000));
    expect(d.isAvailable()).toBe(false);
  });

  it('agrees with the Akka reference on random heartbeat sequences', () => {
    fc.assert(
      fc.property(
        fc.record({
          threshold: fc.constantFrom(1, 3, 8, 12),
          maxSampleSize: fc.integer({ min: 1, max: 20 }),
          minStdDeviation: fc.integer({ min: 1, max: 300 }),
          acceptablePause: fc.integer({ min: 0, max: 3000 }),
          firstEstimate: fc.integer({ min: 1, max: 3000 }),
        }),
        fc.array(fc.integer({ min: 0, max: 5000 }), { minLength: 1, maxLength: 80 }),
        (o, intervals) => {
          const reference = new AkkaReference(o.threshold, o.maxSampleSize, o.minStdDeviation, o.acceptablePause, o.firstEstimate);
          const detector = new PhiAccrualDetector({
            threshold: o.threshold,
            maxSampleSize: o.maxSampleSize,
            minStdDeviationMs: o.minStdDeviation,
            acceptableHeartbeatPauseMs: o.acceptablePause,
            firstHeartbeatEstimateMs: o.firstEstimate,
          });
          let t = 1_000_000;
          for (const interval of intervals) {
            t += interval;
            for (const probe of [t - 1, t, t + 500, t + 2500]) {
              expect(detector.suspicion(probe)).toBe(reference.phi(probe));
              expect(detector.isAvailable(probe)).toBe(reference.isAvailable(probe));
            }
            detector.heartbeat(t);
            reference.heartbeat(t);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it.each([
    ['threshold', { threshold: 0 }],
    ['maxSampleSize', { maxSampleSize: 0 }],
    ['maxSampleSize', { maxSampleSize: 1.5 }],
    ['minStdDeviationMs', { minStdDeviationMs: 0 }],
    ['acceptableHeartbeatPauseMs', { acceptableHeartbeatPauseMs: -1 }],
    ['firstHeartbeatEstimateMs', { firstHeartbeatEstimateMs: 0 }],
  ])('rejects an invalid %s', (option, options) => {
    expect(() => new PhiAccrualDetector(options)).toThrow(expect.objectContaining({ code: 'ERR_BALLAST_INVALID_OPTION', option }));
  });
});

describe('PhiAccrualDetector with fake timers', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('follows fake time through the system clock', () => {
    const d = new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 0 });
    d.heartbeat();
    vi.advanceTimersByTime(1000);
    d.heartbeat();
    expect(d.isAvailable()).toBe(true);
    vi.advanceTimersByTime(10_000);
    expect(d.isAvailable()).toBe(false);
  });
});
