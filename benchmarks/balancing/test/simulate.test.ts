import { describe, expect, it } from 'vitest';
import { EventQueue } from '../sim/event-queue.ts';
import { oracle } from '../sim/oracle.ts';
import { exponential, pareto, seeded } from '../sim/random.ts';
import { type Scenario, scenarios } from '../sim/scenarios.ts';
import { finishTime, simulate } from '../sim/simulate.ts';
import { UtilisationMeter } from '../utilisation.ts';

const settings = { seed: 7, durationMs: 5_000, warmupMs: 500 };

describe('EventQueue', () => {
  it('runs events in time order, same-time events in scheduling order, and advances the clock', () => {
    const q = new EventQueue();
    const seen: string[] = [];
    for (const [at, name] of [
      [5, 'c'],
      [1, 'a'],
      [5, 'd'],
      [3, 'b'],
      [0, 'start'],
    ] as const) {
      q.at(at, () => seen.push(`${name}@${q.now()}`));
    }
    q.at(2, () => q.at(4, () => seen.push(`nested@${q.now()}`)));
    expect(q.run()).toBe(7);
    expect(seen).toEqual(['start@0', 'a@1', 'b@3', 'nested@4', 'c@5', 'd@5']);
  });
});

describe('random', () => {
  it('repeats a stream for the same seed and name, and differs across names', () => {
    const a = seeded(1, 'x');
    const b = seeded(1, 'x');
    const c = seeded(1, 'y');
    const xs = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(xs);
    expect(Array.from({ length: 5 }, c)).not.toEqual(xs);
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('samples distributions with the advertised mean', () => {
    const r = seeded(3);
    for (const dist of [exponential(10), pareto(10, 2.5)]) {
      let sum = 0;
      const n = 200_000;
      for (let i = 0; i < n; i++) sum += dist.sample(r());
      expect(sum / n).toBeCloseTo(10, 0);
    }
  });
});

describe('finishTime', () => {
  const stalls = { periodMs: 100, durationMs: 10, offsetMs: 50 };
  it.each([
    [0, 10, 10],
    [45, 10, 65],
    [52, 10, 70],
    [0, 250, 280],
  ])('work starting at %d for %d ms ends at %d', (start, work, end) => {
    expect(finishTime(stalls, start, work)).toBe(end);
  });
  it('is plain addition without stalls', () => {
    expect(finishTime(undefined, 3, 4)).toBe(7);
  });
});

describe('simulate', () => {
  const mm1: Scenario = {
    name: 'mm1',
    title: 'M/M/1',
    description: '',
    servers: [{ id: 's0', concurrency: 1, weight: 1, service: exponential(10) }],
    arrivals: 'poisson',
    keySpace: 10,
  };

  it('matches queueing theory for an M/M/1 queue (sojourn time is exponential with rate μ − λ)', () => {
    const r = simulate(mm1, 0.5, oracle, { seed: 11, durationMs: 2_000_000, warmupMs: 10_000 });
    // μ = 0.1/ms, λ = 0.05/ms: mean sojourn 20 ms, p50 = 20 ln 2, p99 = 20 ln 100.
    expect(r.latency.p50 / (20 * Math.LN2)).toBeGreaterThan(0.95);
    expect(r.latency.p50 / (20 * Math.LN2)).toBeLessThan(1.05);
    expect(r.latency.p99 / (20 * Math.log(100))).toBeGreaterThan(0.93);
    expect(r.latency.p99 / (20 * Math.log(100))).toBeLessThan(1.07);
    expect(r.throughput).toBeCloseTo(50, -1);
  });

  it('is a pure function of the seed', () => {
    const scenario = scenarios.find((s) => s.name === 'stalls')!;
    const a = simulate(scenario, 0.8, oracle, settings);
    expect(simulate(scenario, 0.8, oracle, settings)).toEqual(a);
    expect(simulate(scenario, 0.8, oracle, { ...settings, seed: 8 }).latency).not.toEqual(a.latency);
  });

  it('accounts for every request through a crash, and the oracle avoids the crashed server', () => {
    const scenario = scenarios.find((s) => s.name === 'crash-return')!;
    const r = simulate(scenario, 0.8, oracle, settings);
    expect(r.ok + r.errors).toBe(r.requests);
    expect(r.errors).toBeGreaterThan(0); // requests in flight on s0 when it crashed
    expect(r.errorRate).toBeLessThan(0.001);
    expect(r.adaptAfterCrashMs).toBe(0);
    expect(r.share.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
  });

  it('reports cache hits only where servers cache', () => {
    const cache = scenarios.find((s) => s.name === 'cache-affinity')!;
    const plain = scenarios.find((s) => s.name === 'homogeneous')!;
    expect(simulate(cache, 0.5, oracle, settings).cacheHitRate).toBeGreaterThan(0);
    expect(simulate(plain, 0.5, oracle, settings).cacheHitRate).toBeNull();
  });
});

describe('UtilisationMeter', () => {
  it('converges to the busy share of slots and decays when idle', () => {
    const m = new UtilisationMeter(2, 0, 1000);
    m.set(1, 0);
    expect(m.read(10_000)).toBeCloseTo(0.5, 3);
    m.set(0, 10_000);
    expect(m.read(11_000)).toBeCloseTo(0.5 / Math.E, 3);
  });
});
