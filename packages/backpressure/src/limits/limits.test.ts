import { isInvalidOptionError } from '@ballast/common';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AimdLimit } from './aimd.ts';
import { Gradient2Limit } from './gradient2.ts';
import { FixedLimit, type LimitAlgorithm } from './limit.ts';
import { VegasLimit } from './vegas.ts';

const sample = (rttMs: number, inflight: number, dropped = false) => ({ rttMs, inflight, dropped, now: 0 });

describe('AimdLimit', () => {
  it('grows by one per success while at least half used and backs off on a drop', () => {
    const aimd = new AimdLimit({ initialLimit: 10, maxLimit: 12, backoffRatio: 0.9 });
    expect(aimd.update(sample(10, 5))).toBe(11);
    expect(aimd.update(sample(10, 2))).toBe(11); // app-limited: unchanged
    expect(aimd.update(sample(10, 11))).toBe(12);
    expect(aimd.update(sample(10, 12))).toBe(12); // capped
    expect(aimd.update(sample(10, 12, true))).toBe(10); // floor(12 * 0.9)
  });

  it('treats a request slower than timeoutMs as a drop', () => {
    const aimd = new AimdLimit({ initialLimit: 20, timeoutMs: 100, backoffRatio: 0.5 });
    expect(aimd.update(sample(101, 20))).toBe(10);
  });

  it('never leaves [minLimit, maxLimit]', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 1, max: 300 }), fc.boolean())), (samples) => {
        const aimd = new AimdLimit({ minLimit: 5, maxLimit: 50, initialLimit: 10, timeoutMs: 5000 });
        for (const [rtt, inflight, dropped] of samples) {
          const limit = aimd.update(sample(rtt, inflight, dropped));
          expect(limit).toBeGreaterThanOrEqual(5);
          expect(limit).toBeLessThanOrEqual(50);
        }
      }),
    );
  });
});

describe('VegasLimit', () => {
  const noProbe = { probeMultiplier: 1_000_000, random: () => 1 };

  it('records the first sample as the no-load latency', () => {
    const vegas = new VegasLimit({ initialLimit: 10, ...noProbe });
    expect(vegas.update(sample(10, 10))).toBe(10);
    expect(vegas.rttNoLoadMs).toBe(10);
  });

  it('grows by 6·log10(limit) when there is no queue', () => {
    const vegas = new VegasLimit({ initialLimit: 100, ...noProbe });
    vegas.update(sample(10, 100));
    // Latency equal to no-load: queue estimate 0 <= log10(100) = 2 → +6·2.
    expect(vegas.update(sample(10, 100))).toBe(112);
  });

  it('shrinks by log10(limit) when the estimated queue exceeds 6·log10(limit)', () => {
    const vegas = new VegasLimit({ initialLimit: 100, ...noProbe });
    vegas.update(sample(10, 100));
    // Latency doubled: queue = ceil(100 · (1 − 10/20)) = 50 > 12 → −2.
    expect(vegas.update(sample(20, 100))).toBe(98);
  });

  it('holds inside the alpha..beta band, and when application-limited', () => {
    const vegas = new VegasLimit({ initialLimit: 100, ...noProbe });
    vegas.update(sample(10, 100));
    // queue = ceil(100 · (1 − 10/11.1)) = 10: between 3·2 and 6·2 → unchanged.
    expect(vegas.update(sample(11.1, 100))).toBe(100);
    expect(vegas.update(sample(10, 10))).toBe(100);
  });

  it('shrinks on a drop', () => {
    const vegas = new VegasLimit({ initialLimit: 100, ...noProbe });
    vegas.update(sample(10, 100));
    expect(vegas.update(sample(12, 100, true))).toBe(98);
  });

  it('takes alpha and beta as functions of the limit', () => {
    const vegas = new VegasLimit({ initialLimit: 10, alpha: () => 1, beta: () => 2, ...noProbe });
    vegas.update(sample(20, 10));
    // queue = ceil(10 · (1 − 20/30)) = 4 > beta 2 → −log10(10) = −1.
    expect(vegas.update(sample(30, 10))).toBe(9);
    // queue = ceil(9 · (1 − 20/21)) = 1 <= log10 → +beta.
    expect(vegas.update(sample(21, 9))).toBe(11);
  });

  it('takes the fast-growth threshold as a function of the whole-number limit', () => {
    const seen: number[] = [];
    const vegas = new VegasLimit({
      initialLimit: 3,
      alpha: () => 1,
      beta: () => 1,
      threshold: (limit) => {
        seen.push(limit);
        return 0;
      },
      ...noProbe,
    });
    vegas.update(sample(20, 3));
    // queue = ceil(3 · (1 − 20/30)) = 1: above threshold 0, not below alpha, not above beta → hold.
    expect(vegas.update(sample(30, 3))).toBe(3);
    // queue 0 <= threshold 0 → +beta.
    expect(vegas.update(sample(20, 3))).toBe(4);
    // With the default threshold (log10 = 1) a queue of 1 grows the limit.
    const byDefault = new VegasLimit({ initialLimit: 3, alpha: () => 1, beta: () => 1, ...noProbe });
    byDefault.update(sample(20, 3));
    expect(byDefault.update(sample(30, 3))).toBe(4);
    expect(seen).toEqual([3, 3]);
  });

  it('probes: forgets the no-load latency every probeMultiplier × limit samples', () => {
    const vegas = new VegasLimit({ initialLimit: 10, minLimit: 10, maxLimit: 10, probeMultiplier: 2, random: () => 1 });
    vegas.update(sample(5, 10));
    for (let i = 0; i < 18; i++) vegas.update(sample(50, 10));
    expect(vegas.rttNoLoadMs).toBe(5);
    vegas.update(sample(50, 10)); // 20th sample = 1 × 2 × 10
    expect(vegas.rttNoLoadMs).toBe(50);
  });
});

describe('Gradient2Limit', () => {
  it('grows by queueSize × smoothing while latency is flat', () => {
    const g = new Gradient2Limit({ initialLimit: 20, smoothing: 0.5, queueSize: 4 });
    // gradient = min(1, 1.5 · 10/10) = 1 → new = 20 + 4 → smoothed 22.
    expect(g.update(sample(10, 20))).toBe(22);
  });

  it('shrinks, at most by half per step, when latency rises far above the long-term average', () => {
    const g = new Gradient2Limit({ initialLimit: 100, smoothing: 1, queueSize: 0, longWindow: 1000 });
    for (let i = 0; i < 10; i++) g.update(sample(10, 100));
    expect(g.limit).toBe(100);
    const next = g.update(sample(1000, 100));
    expect(next).toBeCloseTo(50, 5); // gradient clamped at 0.5
  });

  it('averages the first ten samples from their sum, as Netflix ExpAvgMeasurement does', () => {
    const g = new Gradient2Limit({ initialLimit: 20 });
    g.update(sample(100, 20));
    g.update(sample(10, 20)); // average 55 > 2 × 10: decayed, but the warm-up average is recomputed from the sum
    g.update(sample(40, 20));
    expect(g.longRttMs).toBe(50);
  });

  it('passes the whole-number limit to a queueSize function', () => {
    const seen: number[] = [];
    const g = new Gradient2Limit({
      initialLimit: 20,
      smoothing: 0.5,
      queueSize: (l) => {
        seen.push(l);
        return 3;
      },
    });
    g.update(sample(10, 20)); // 20 → 20 × 0.5 + 23 × 0.5 = 21.5
    g.update(sample(10, 21));
    expect(seen).toEqual([20, 21]);
  });

  it('ignores samples while application-limited', () => {
    const g = new Gradient2Limit({ initialLimit: 40 });
    expect(g.update(sample(10, 5))).toBe(40);
  });

  it('decays the long-term average once latency recovers', () => {
    const g = new Gradient2Limit({ initialLimit: 50, longWindow: 100 });
    for (let i = 0; i < 50; i++) g.update(sample(100, 50));
    const before = g.longRttMs;
    g.update(sample(10, 50));
    expect(g.longRttMs).toBeLessThan(before * 0.96);
  });

  it('converges to a smaller limit under sustained latency growth, within bounds', () => {
    const g = new Gradient2Limit({ initialLimit: 100, minLimit: 10, maxLimit: 200, longWindow: 50 });
    for (let i = 0; i < 20; i++) g.update(sample(10, 100));
    for (let i = 1; i <= 100; i++) g.update(sample(10 + i * 2, Math.ceil(g.limit)));
    expect(g.limit).toBeLessThan(100);
    expect(g.limit).toBeGreaterThanOrEqual(10);
  });
});

describe('bounds', () => {
  const algorithms: Array<[string, (o: object) => LimitAlgorithm]> = [
    ['aimd', (o) => new AimdLimit(o)],
    ['vegas', (o) => new VegasLimit(o)],
    ['gradient2', (o) => new Gradient2Limit(o)],
  ];

  it.each(algorithms)('%s stays within [minLimit, maxLimit] for any samples', (_name, make) => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.double({ min: 0.01, max: 10_000, noNaN: true }), fc.integer({ min: 1, max: 500 }), fc.boolean()), {
          maxLength: 200,
        }),
        (samples) => {
          const algorithm = make({ minLimit: 3, maxLimit: 60, initialLimit: 20 });
          for (const [rtt, inflight, dropped] of samples) {
            const limit = algorithm.update(sample(rtt, inflight, dropped));
            expect(limit).toBeGreaterThanOrEqual(3);
            expect(limit).toBeLessThanOrEqual(60);
          }
        },
      ),
    );
  });

  it.each(algorithms)('%s rejects an initialLimit outside the bounds', (_name, make) => {
    expect(() => make({ minLimit: 10, maxLimit: 20, initialLimit: 30 })).toThrow(/initialLimit/);
    let error: unknown;
    try {
      make({ minLimit: 0 });
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
  });

  it('FixedLimit never moves and validates', () => {
    const fixed = new FixedLimit(7);
    expect(fixed.update()).toBe(7);
    expect(() => new FixedLimit(0)).toThrow(/limit/);
  });
});
