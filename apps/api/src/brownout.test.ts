import type { BrownoutController, BrownoutOptions } from '@ballast/backpressure';
import { seededRandom } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { apiDimmer } from './brownout.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const DEADLINE_MS = 450;
/** Admission's expected-wait budget, ms: a set arriving behind more queued work is shed. */
const BUDGET_MS = 400;

/**
 * The system as an API server's dimmer sees it, in fake time: rendition sets arrive at
 * `load` × the full-quality capacity (Poisson), each costing `0.05 + 0.95 θ` of a full
 * set (efforts lowered, then renditions dropped), into one queue of work drained in real
 * (fake) time. A set arriving behind more than {@link BUDGET_MS} of work is shed: six
 * deadline misses (2000 ‰). An admitted set's jobs answer when the queue reaches them:
 * its response time, ‰ of the deadline, is recorded then — the dimmer hears of a change
 * of θ only as late as the work it affects finishes.
 */
function system(dimmer: BrownoutController, seed: number, fit: boolean) {
  const random = seededRandom(seed);
  const capacityPerS = 7;
  const fullMs = (1000 / capacityPerS) * 0.8;
  const state = { load: 0.5, backlogMs: 0, shed: 0, admitted: 0 };
  const tickMs = 5;
  const timer = setInterval(() => {
    state.backlogMs = Math.max(0, state.backlogMs - tickMs);
    if (random() >= (state.load * capacityPerS * tickMs) / 1000) return;
    if (state.backlogMs > BUDGET_MS) {
      state.shed++;
      for (let i = 0; i < 6; i++) dimmer.record(2000);
      return;
    }
    state.admitted++;
    let costMs = fullMs * (0.05 + 0.95 * dimmer.level);
    if (fit && state.backlogMs + costMs > BUDGET_MS) {
      // Degrade before shedding (fitToRoom): planned down to what fits, the cut heard as the response time it would have had.
      dimmer.record(Math.min(2000, (1000 * (state.backlogMs + costMs)) / DEADLINE_MS));
      costMs = Math.max(fullMs * 0.05, BUDGET_MS - state.backlogMs);
    }
    state.backlogMs += costMs;
    const responseMs = state.backlogMs;
    setTimeout(() => dimmer.record((1000 * responseMs) / DEADLINE_MS), responseMs);
  }, tickMs);
  return { state, stop: () => clearInterval(timer) };
}

/** θ every 250 ms for `seconds`. */
async function trace(dimmer: BrownoutController, seconds: number): Promise<number[]> {
  const levels: number[] = [];
  for (let i = 0; i < seconds * 4; i++) {
    await vi.advanceTimersByTimeAsync(250);
    levels.push(dimmer.level);
  }
  return levels;
}

/** Seconds until θ stays within ±0.1 of where it ends (the mean of its last 8 s), and how far it moves after. */
function settling(levels: number[]): { settledAfterS: number; final: number; maxDeviation: number } {
  const tail = levels.slice(-32);
  const final = tail.reduce((a, b) => a + b, 0) / tail.length;
  let settled = levels.length;
  while (settled > 0 && Math.abs((levels[settled - 1] as number) - final) <= 0.1) settled--;
  const maxDeviation = Math.max(0, ...levels.slice(settled).map((l) => Math.abs(l - final)));
  return { settledAfterS: settled / 4, final, maxDeviation };
}

/** Steps of load 0.5× → 2× → 0.5×, 20 s each: θ's settling after each step of the last two. */
async function steps(options: BrownoutOptions, seed: number, fit = true) {
  const dimmer = apiDimmer(options, 'test') as BrownoutController;
  const load = system(dimmer, seed, fit);
  const calm = await trace(dimmer, 20);
  load.state.load = 2;
  const overload = settling(await trace(dimmer, 20));
  load.state.load = 0.5;
  const recovery = settling(await trace(dimmer, 20));
  load.stop();
  dimmer.close();
  return { calm, overload, recovery, shed: load.state.shed };
}

describe('the API dimmer’s step response (its default gains, a queue in fake time)', () => {
  it.each([1, 2, 3])('settles within 10 s of a step of load and moves less than ±0.1 after (seed %d)', async (seed) => {
    const { calm, overload, recovery, shed } = await steps({}, seed);
    expect(Math.min(...calm)).toBeGreaterThan(0.9);
    expect(overload.final).toBeLessThan(0.8);
    expect(overload.settledAfterS).toBeLessThanOrEqual(10);
    expect(overload.maxDeviation).toBeLessThanOrEqual(0.1);
    expect(recovery.final).toBeGreaterThan(0.95);
    expect(recovery.settledAfterS).toBeLessThanOrEqual(10);
    expect(shed).toBe(0);
  });

  it('without degrading before shedding, the same loop sheds and never settles (a limit cycle)', async () => {
    const { overload, shed } = await steps({}, 1, false);
    expect(shed).toBeGreaterThan(0);
    expect(overload.settledAfterS).toBeGreaterThan(10);
  });

  it('faster gains do not help: a pole of 0.5 rings on the queue’s delay', async () => {
    const { overload } = await steps({ pole: 0.5 }, 1);
    expect(overload.settledAfterS).toBeGreaterThan(10);
  });

  it('comes back to full quality after an idle spell instead of starting the next burst dimmed', async () => {
    const held = apiDimmer({ whenIdle: 'hold', initialLevel: 0.3 }, 'held') as BrownoutController;
    const raised = apiDimmer({ initialLevel: 0.3 }, 'raised') as BrownoutController;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(held.level).toBe(0.3);
    expect(raised.level).toBe(1);
    held.close();
    raised.close();
  });
});
