import { BrownoutController, type BrownoutOptions } from '@ballast/backpressure';
import { seededRandom } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Admission } from './admission.ts';
import { apiDimmer, fitToRoom, roomWithinSetpoint } from './brownout.ts';
import { planRenditions, type Rendition } from './renditions/plan.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const DEADLINE_MS = 450;
/** Admission's expected-wait budget, ms: a set arriving behind more queued work is shed. */
const BUDGET_MS = 400;
/** Renditions in a full-quality set. */
const RENDITIONS = 6;
/** API servers sharing the queue, each with its own dimmer. */
const SERVERS = 3;
/** Seeds of the step-response runs. */
const SEEDS = [1, 2, 3, 4, 5, 6];
/** Time limit of a test running the model for every seed (minutes of fake time; seconds of CPU on a loaded machine), ms. */
const SLOW = 180_000;

/**
 * The system as an API server's dimmer sees it, in fake time: rendition sets of
 * {@link RENDITIONS} jobs arrive at `load` × the full-quality capacity (Poisson), each
 * costing `0.05 + 0.95 θ` of a full set (efforts lowered, then renditions dropped), into
 * one queue of work drained in real (fake) time. A set arriving behind more than
 * {@link BUDGET_MS} of work is shed: a deadline miss (2000 ‰) per job. With `fit`, a set
 * that would not answer within the dimmer's setpoint is cut down to what would
 * (fitToRoom), each job cut a deadline miss (with `cutAsMissed`). An admitted set's jobs answer when the queue reaches them: their
 * response time, ‰ of the deadline, is recorded then — the dimmer hears of a change of θ
 * only as late as the work it affects finishes. The dimmer is one of {@link SERVERS} API
 * servers' (the others taken to be at the same level): it hears one sample in three.
 */
function system(controller: BrownoutController, seed: number, fit: boolean, cutAsMissed: boolean) {
  const random = seededRandom(seed);
  const hears = seededRandom(seed + 100);
  const dimmer = {
    get level() {
      return controller.level;
    },
    record(sample: number) {
      if (hears() < 1 / SERVERS) controller.record(sample);
    },
  };
  const capacityPerS = 7;
  const fullMs = (1000 / capacityPerS) * 0.8;
  const state = { load: 0.5, backlogMs: 0, shed: 0, admitted: 0, cut: 0 };
  const tickMs = 5;
  const jobsOf = (costMs: number): number => Math.max(1, Math.round((RENDITIONS * costMs) / fullMs));
  const timer = setInterval(() => {
    state.backlogMs = Math.max(0, state.backlogMs - tickMs);
    if (random() >= (state.load * capacityPerS * tickMs) / 1000) return;
    let costMs = fullMs * (0.05 + 0.95 * dimmer.level);
    if (state.backlogMs > BUDGET_MS) {
      state.shed++;
      for (let i = 0; i < jobsOf(costMs); i++) dimmer.record(2000);
      return;
    }
    state.admitted++;
    // Degrade before shedding (fitToRoom): planned down to what answers within the setpoint, each job cut a deadline missed.
    const withinMs = Math.min(BUDGET_MS, (controller.setpointMs / 1000) * DEADLINE_MS);
    if (fit && state.backlogMs + costMs > withinMs) {
      const fitted = Math.max(fullMs * 0.05, withinMs - state.backlogMs);
      const cut = jobsOf(costMs) - jobsOf(fitted);
      state.cut += cut;
      // (Before: one sample, the response time the set would have had.)
      if (cutAsMissed) for (let i = 0; i < cut; i++) dimmer.record(2000);
      else dimmer.record(Math.min(2000, (1000 * (state.backlogMs + costMs)) / DEADLINE_MS));
      costMs = fitted;
    }
    const jobs = jobsOf(costMs);
    for (let i = 1; i <= jobs; i++) {
      const responseMs = state.backlogMs + (costMs * i) / jobs;
      setTimeout(() => dimmer.record((1000 * responseMs) / DEADLINE_MS), responseMs);
    }
    state.backlogMs += costMs;
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

/** Steps of load 0.5× → `overload`× → 0.5×, 20 s each: θ's settling after each step of the last two. */
async function steps(options: BrownoutOptions, seed: number, { overload: multiplier = 2, fit = true, cutAsMissed = true } = {}) {
  const dimmer = apiDimmer(options, 'test') as BrownoutController;
  const load = system(dimmer, seed, fit, cutAsMissed);
  const calm = await trace(dimmer, 20);
  load.state.load = multiplier;
  const overload = settling(await trace(dimmer, 20));
  load.state.load = 0.5;
  const recovery = settling(await trace(dimmer, 20));
  load.stop();
  dimmer.close();
  return { calm, overload, recovery, shed: load.state.shed };
}

/** Steps to `overload`× and back for every seed: how many settled within 10 s (and stayed within ±0.1 after). */
async function settledRuns(options: BrownoutOptions, overload: number, cutAsMissed = true) {
  const runs = [];
  for (const seed of SEEDS) runs.push(await steps(options, seed, { overload, cutAsMissed }));
  const within = (s: ReturnType<typeof settling>): boolean => s.settledAfterS <= 10 && s.maxDeviation <= 0.1;
  return {
    runs,
    overload: runs.filter((r) => within(r.overload)).length,
    recovery: runs.filter((r) => within(r.recovery)).length,
    medianOverloadS: runs.map((r) => r.overload.settledAfterS).sort((a, b) => a - b)[SEEDS.length / 2] as number,
  };
}

describe('the API dimmer’s step response (its default gains, a queue in fake time)', () => {
  it.each([2, 3])(
    'settles within 10 s of a step of load to %d× in most runs, and within 10 s of the step back',
    async (multiplier) => {
      const { runs, overload, recovery } = await settledRuns({}, multiplier);
      for (const r of runs) {
        // At half the capacity θ stays high, if not at 1: this queue runs one set at a time, so a burst of three full
        // sets already waits past the setpoint (270 ms) and the third is cut to fit (a miss the dimmer hears).
        expect(r.calm.reduce((a, b) => a + b, 0) / r.calm.length).toBeGreaterThan(0.85);
        expect(r.overload.final).toBeLessThan(multiplier === 2 ? 0.7 : 0.5);
        expect(r.recovery.final).toBeGreaterThan(0.8);
        expect(r.shed).toBe(0);
      }
      // θ is driven by a noisy percentile (a third of the samples each): a run in three may wander past ±0.1 after settling.
      expect(overload).toBeGreaterThanOrEqual(4);
      expect(recovery).toBeGreaterThanOrEqual(4);
    },
    SLOW,
  );

  it('without degrading before shedding, the same loop sheds while the dimmer catches up with the step', async () => {
    const { shed } = await steps({}, 1, { fit: false });
    expect(shed).toBeGreaterThan(0);
  });

  it('faster gains do not help: a pole of 0.5 rings on the queue’s delay', async () => {
    const { overload } = await steps({ pole: 0.5 }, 1);
    expect(overload.settledAfterS).toBeGreaterThan(10);
  });

  it(
    'a pole of 0.8 chases the noise of the percentile: fewer runs settle than at 0.9',
    async () => {
      const fast = await settledRuns({ pole: 0.8 }, 2);
      const calm = await settledRuns({}, 2);
      expect(fast.overload).toBeLessThan(calm.overload);
    },
    SLOW,
  );

  it(
    'renditions cut to fit are deadline misses: heard as their predicted response times instead, θ falls slower',
    async () => {
      const quiet = await settledRuns({}, 3, false);
      const loud = await settledRuns({}, 3);
      expect(quiet.medianOverloadS).toBeGreaterThan(loud.medianOverloadS);
    },
    SLOW,
  );

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

describe('fitToRoom: degrade before shedding', () => {
  const asked: Rendition[] = [80, 160, 240].flatMap((width) => [
    { width, format: 'webp' as const, effort: 4 },
    { width, format: 'avif' as const, effort: 3 },
  ]);
  const draw = () => 0.5;
  const planned = () => ({ plan: planRenditions(asked, 1, draw), level: 1 });
  const dimmer = () => new BrownoutController({ setpointMs: 600, autoUpdate: false });

  it('leaves a set that fits alone, and tells the dimmer nothing', () => {
    const d = dimmer();
    const set = planned();
    expect(fitToRoom(asked, set, 6, 6, d, draw)).toBe(set);
    expect(d.stats().pendingSamples).toBe(0);
  });

  it('plans a set lower until it fits within the setpoint, each rendition cut a deadline missed (2000 ‰)', () => {
    const d = dimmer();
    // Admission would take 5 more jobs; 2 of them would answer within the setpoint: the set is fitted to 2.
    const fitted = fitToRoom(asked, planned(), 5, 2, d, draw);
    expect(fitted.plan.planned).toBeLessThanOrEqual(2);
    expect(fitted.plan.planned).toBeGreaterThan(0);
    expect(fitted.level).toBeLessThan(1);
    expect(d.stats().pendingSamples).toBe(6 - fitted.plan.planned);
    d.update();
    expect(d.stats().measuredMs).toBeCloseTo(2000, -2);
  });

  it('plans a set the queue has no room for at its least (one rendition), the rest missed: a probe admits one job, not six', () => {
    const d = dimmer();
    const fitted = fitToRoom(asked, planned(), 0, 0, d, draw);
    expect(fitted.level).toBe(0);
    expect(fitted.plan.planned).toBe(1);
    expect(fitted.plan.renditions.find((r) => r.dropped === undefined)).toMatchObject({ width: 80, format: 'webp' });
    expect(d.stats().pendingSamples).toBe(5);
  });

  it('keeps one job when admission has room but none would answer within the setpoint', () => {
    const d = dimmer();
    const fitted = fitToRoom(asked, planned(), 3, 0, d, draw);
    expect(fitted.plan.planned).toBe(1);
    expect(d.stats().pendingSamples).toBe(5);
  });

  it('counts the jobs admission would take that answer within the setpoint', async () => {
    vi.useRealTimers();
    let depth = 0;
    // Two worker slots, 100 ms a conversion: one slot frees every 50 ms.
    const admission = new Admission(
      {
        depth: async () => depth,
        serviceStats: async () => ({
          samples: 64,
          meanMs: 100,
          recentMs: Array<number>(64).fill(100),
          medianMs: 100,
          p90Ms: 100,
          clampedMeanMs: 100,
          updatedAt: Date.now(),
        }),
      },
      { workerSlots: 2, depthCacheMs: 0, serviceCacheMs: 0, probeRatio: 0 },
    );
    const room = await admission.room(1000);
    expect(room).toBe(10);
    // 400 ‰ of 1000 ms: a job may wait 300 ms behind d others, (d − 1) × 50 ms: d ≤ 7, so 8 of the 10.
    expect(roomWithinSetpoint(admission, room, 1000, 400)).toBe(8);
    // 600 ‰: d ≤ 11, more than admission's room: its 10.
    expect(roomWithinSetpoint(admission, room, 1000, 600)).toBe(10);
    depth = 6;
    const fuller = await admission.room(1000);
    expect(fuller).toBe(4);
    expect(roomWithinSetpoint(admission, fuller, 1000, 400)).toBe(2);
    // 300 ‰: d ≤ 5, and 6 are ahead already.
    expect(roomWithinSetpoint(admission, fuller, 1000, 300)).toBe(0);
    admission[Symbol.dispose]();
  });
});
