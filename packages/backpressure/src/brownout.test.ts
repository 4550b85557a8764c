import { isInvalidOptionError, seededRandom, wrap } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BrownoutController, type BrownoutOptions } from './brownout.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/**
 * A service whose latency grows with the optional work it does and with the load:
 * `latency = base + load × cost × θ`, ±20 % noise; a sample every `everyMs`.
 */
function plant(dimmer: BrownoutController, seed = 7, everyMs = 10) {
  const random = seededRandom(seed);
  const state = { load: 1, costMs: 400, baseMs: 20 };
  const timer = setInterval(() => {
    const latency = state.baseMs + state.load * state.costMs * dimmer.level;
    dimmer.record(latency * (0.8 + 0.4 * random()));
  }, everyMs);
  return { state, stop: () => clearInterval(timer) };
}

/** Samples θ once per period for `seconds`. */
async function trace(dimmer: BrownoutController, seconds: number): Promise<number[]> {
  const levels: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await vi.advanceTimersByTimeAsync(dimmer.periodMs);
    levels.push(dimmer.level);
  }
  return levels;
}

/** Seconds until θ stays within ±0.1 of where it ends (the mean of the last 10), and the largest deviation after that. */
function settling(levels: number[]): { settledAfter: number; final: number; maxDeviation: number } {
  const tail = levels.slice(-10);
  const final = tail.reduce((a, b) => a + b, 0) / tail.length;
  let settledAfter = levels.length;
  while (settledAfter > 0 && Math.abs((levels[settledAfter - 1] as number) - final) <= 0.1) settledAfter--;
  const maxDeviation = Math.max(...levels.slice(settledAfter).map((l) => Math.abs(l - final)));
  return { settledAfter, final, maxDeviation };
}

describe('BrownoutController', () => {
  it("follows the paper's law and the RLS estimate, step by step (reference values)", () => {
    const dimmer = new BrownoutController({ setpointMs: 500, pole: 0.9, forgetting: 0.8, autoUpdate: false });
    expect(dimmer.stats()).toMatchObject({ level: 1, alphaMs: 500 });
    // RLS: K = 1000·1 / (1·1000·1 + 0.8); α = 500 + K (1000 − 500); θ = 1 + 0.1 / α · (500 − 1000)
    expect(dimmer.update(1000)).toBeCloseTo(0.9499800079968013, 12);
    expect(dimmer.stats().alphaMs).toBeCloseTo(999.6003197442046, 9);
    expect(dimmer.update(600)).toBeCloseTo(0.9375514006353158, 12);
    expect(dimmer.stats().alphaMs).toBeCloseTo(804.5953749402903, 9);
    expect(dimmer.stats()).toMatchObject({ updates: 2, measuredMs: 600 });
  });

  it('controls the chosen percentile of the period’s samples', () => {
    const dimmer = new BrownoutController({ setpointMs: 100, percentile: 50, autoUpdate: false });
    const updates: number[] = [];
    dimmer.on('update', ({ measuredMs }) => updates.push(measuredMs));
    for (const ms of [10, 20, 30, 40, 1000]) dimmer.record(ms);
    dimmer.update();
    expect(updates[0]).toBeCloseTo(30, 0);
    expect(dimmer.stats().pendingSamples).toBe(0);
  });

  it('settles within 10 s after step changes of load and stays within ±0.1 (fake time, the timer-driven loop)', async () => {
    const dimmer = new BrownoutController({ setpointMs: 200 });
    const service = plant(dimmer);
    // Light load (120 ms at full quality, ±20 %): θ stays at 1.
    service.state.load = 0.25;
    expect(Math.min(...(await trace(dimmer, 20)))).toBeGreaterThan(0.95);
    // Load ×2.5: latency at full quality 1020 ms against a 200 ms setpoint.
    service.state.load = 2.5;
    const heavy = settling(await trace(dimmer, 40));
    expect(heavy.final).toBeGreaterThan(0.1);
    expect(heavy.final).toBeLessThan(0.3);
    expect(heavy.settledAfter).toBeLessThanOrEqual(10);
    expect(heavy.maxDeviation).toBeLessThanOrEqual(0.1);
    // Load halves: θ rises to a new level.
    service.state.load = 1.25;
    const lighter = settling(await trace(dimmer, 40));
    expect(lighter.final).toBeGreaterThan(heavy.final + 0.1);
    expect(lighter.settledAfter).toBeLessThanOrEqual(10);
    expect(lighter.maxDeviation).toBeLessThanOrEqual(0.1);
    service.stop();
    dimmer.close();
  });

  it('keeps θ within its bounds, and turns at once after a long saturation (no windup)', async () => {
    const dimmer = new BrownoutController({ setpointMs: 100, minLevel: 0.2, maxLevel: 0.9, initialLevel: 0.5 });
    const levels: number[] = [];
    dimmer.on('update', ({ level }) => levels.push(level));
    const service = plant(dimmer);
    service.state.load = 100; // far beyond what θ = 0.2 can bring back to the setpoint
    await trace(dimmer, 60);
    expect(dimmer.level).toBe(0.2);
    const alphaAfterSaturation = dimmer.stats().alphaMs;
    expect(Number.isFinite(alphaAfterSaturation)).toBe(true);
    service.state.load = 0; // latency drops to the base
    const recovery = await trace(dimmer, 40);
    // The first period after the change already moves θ up: no integral to unwind first.
    expect(recovery[0]).toBeGreaterThan(0.2);
    for (let i = 1; i < recovery.length; i++) expect(recovery[i]).toBeGreaterThanOrEqual(recovery[i - 1] as number);
    expect(recovery[recovery.length - 1]).toBe(0.9);
    expect(Math.min(...levels)).toBeGreaterThanOrEqual(0.2);
    expect(Math.max(...levels)).toBeLessThanOrEqual(0.9);
    service.stop();
    dimmer.close();
  });

  it('freezes its estimate while θ is 0 (the measurement says nothing about α) and keeps it within bounds', () => {
    const dimmer = new BrownoutController({ setpointMs: 100, autoUpdate: false, alphaBoundsMs: [10, 1000] });
    for (let i = 0; i < 20; i++) dimmer.update(5000);
    expect(dimmer.level).toBe(0);
    const alpha = dimmer.stats().alphaMs;
    expect(alpha).toBeLessThanOrEqual(1000);
    for (let i = 0; i < 50; i++) dimmer.update(5000);
    expect(dimmer.stats().alphaMs).toBe(alpha);
    // One quiet period moves θ up by (1 − p₁) · e / α, with the frozen α.
    expect(dimmer.update(0)).toBeCloseTo((0.1 * 100) / alpha, 12);
  });

  it('holds the dimmer through periods without samples, saying so', async () => {
    const dimmer = new BrownoutController({ setpointMs: 100, minSamples: 3, initialLevel: 0.4 });
    const holds: number[] = [];
    dimmer.on('hold', ({ samples }) => holds.push(samples));
    dimmer.record(5);
    await vi.advanceTimersByTimeAsync(3000);
    expect(holds).toEqual([1, 0, 0]);
    expect(dimmer.level).toBe(0.4);
    expect(dimmer.stats()).toMatchObject({ holds: 3, updates: 0 });
    dimmer.close();
  });

  it("with whenIdle: 'raise', takes a period without samples as latency 0: θ climbs back, the estimate untouched", async () => {
    const dimmer = new BrownoutController({ setpointMs: 100, pole: 0.5, initialLevel: 0.2, initialAlphaMs: 200, whenIdle: 'raise' });
    const updates: Array<{ samples: number; measuredMs: number }> = [];
    dimmer.on('update', ({ samples, measuredMs }) => updates.push({ samples, measuredMs }));
    await vi.advanceTimersByTimeAsync(1000);
    // θ + (1 − p₁) ÷ α · (setpoint − 0) = 0.2 + 0.5 ÷ 200 · 100
    expect(dimmer.level).toBeCloseTo(0.45, 12);
    expect(dimmer.stats()).toMatchObject({ alphaMs: 200, holds: 0, updates: 1 });
    await vi.advanceTimersByTimeAsync(3000);
    expect(dimmer.level).toBe(1);
    expect(updates).toEqual([
      { samples: 0, measuredMs: 0 },
      { samples: 0, measuredMs: 0 },
      { samples: 0, measuredMs: 0 },
      { samples: 0, measuredMs: 0 },
    ]);
    // A period with samples, but fewer than minSamples, still holds.
    const sparse = new BrownoutController({ minSamples: 3, initialLevel: 0.4, whenIdle: 'raise' });
    sparse.record(5);
    await vi.advanceTimersByTimeAsync(1000);
    expect(sparse.level).toBe(0.4);
    dimmer.close();
    sparse.close();
  });

  it('serves optional work with probability θ', () => {
    const dimmer = new BrownoutController({ autoUpdate: false, initialLevel: 0.3, random: seededRandom(1) });
    let yes = 0;
    for (let i = 0; i < 10_000; i++) if (dimmer.shouldServeOptional()) yes++;
    expect(yes / 10_000).toBeCloseTo(0.3, 1);
    expect(dimmer.stats()).toMatchObject({ optionalServed: yes, optionalSkipped: 10_000 - yes });
    const full = new BrownoutController({ autoUpdate: false, random: () => 0.999999 });
    const none = new BrownoutController({ autoUpdate: false, initialLevel: 0, random: () => 0 });
    expect([full.shouldServeOptional(), none.shouldServeOptional()]).toEqual([true, false]);
  });

  it('runs calls under the policy contract: level and decision in the context, duration recorded, composes with wrap()', async () => {
    const dimmer = new BrownoutController({ setpointMs: 100, autoUpdate: false, initialLevel: 0.5, random: () => 0.25 });
    const seen = await dimmer.execute(async ({ level, optional, signal, attempt }) => {
      await vi.advanceTimersByTimeAsync(40);
      return { level, optional, aborted: signal.aborted, attempt };
    });
    expect(seen).toEqual({ level: 0.5, optional: true, aborted: false, attempt: 1 });
    await expect(
      dimmer.execute(async () => {
        await vi.advanceTimersByTimeAsync(80);
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    // Judged `ignore`: not a sample.
    await dimmer.execute(() => 'cancelled', { classify: () => 'ignore' });
    const measured: number[] = [];
    dimmer.on('update', ({ measuredMs, samples }) => measured.push(measuredMs, samples));
    dimmer.update();
    expect(measured[1]).toBe(2);
    expect(measured[0]).toBeCloseTo(80, 0);
    const chain = wrap(dimmer);
    expect(await chain.execute(() => 'through wrap')).toBe('through wrap');
    const aborted = AbortSignal.abort(new Error('gone'));
    await expect(dimmer.execute(() => 'never', { signal: aborted })).rejects.toThrow('gone');
  });

  it('closes without leaving a timer, and ignores samples afterwards', () => {
    const dimmer = new BrownoutController();
    expect(vi.getTimerCount()).toBe(1);
    dimmer.record(10);
    dimmer.close();
    expect(vi.getTimerCount()).toBe(0);
    dimmer.record(10);
    expect(dimmer.stats().pendingSamples).toBe(0);
    expect(dimmer.update()).toBe(1);
    dimmer[Symbol.dispose]();
  });

  it.each<[keyof BrownoutOptions | string, BrownoutOptions]>([
    ['setpointMs', { setpointMs: 0 }],
    ['setpointMs', { setpointMs: Number.NaN }],
    ['percentile', { percentile: 101 }],
    ['periodMs', { periodMs: 0 }],
    ['pole', { pole: 1 }],
    ['pole', { pole: -0.1 }],
    ['forgetting', { forgetting: 0 }],
    ['forgetting', { forgetting: 1.5 }],
    ['minLevel', { minLevel: -1 }],
    ['maxLevel', { minLevel: 0.6, maxLevel: 0.5 }],
    ['initialLevel', { initialLevel: 2 }],
    ['initialLevel', { minLevel: 0.5, initialLevel: 0.2 }],
    ['alphaBoundsMs', { alphaBoundsMs: [1] as unknown as [number, number] }],
    ['alphaBoundsMs[1]', { alphaBoundsMs: [10, 5] }],
    ['initialAlphaMs', { alphaBoundsMs: [10, 20], initialAlphaMs: 30 }],
    ['minSamples', { minSamples: 0 }],
    ['random', { random: 'no' as unknown as () => number }],
    ['whenIdle', { whenIdle: 'rise' as 'raise' }],
  ])('refuses a bad %s, naming it', (option, options) => {
    let error: unknown;
    try {
      new BrownoutController({ autoUpdate: false, ...options }).close();
    } catch (e) {
      error = e;
    }
    expect(isInvalidOptionError(error)).toBe(true);
    expect((error as { option: string }).option).toBe(option);
  });

  it('refuses a bad measurement given to update()', () => {
    const dimmer = new BrownoutController({ autoUpdate: false });
    expect(() => dimmer.update(-1)).toThrow(/measuredMs/);
    expect(() => dimmer.update(Number.POSITIVE_INFINITY)).toThrow(/measuredMs/);
    expect(dimmer.stats().updates).toBe(0);
  });
});
