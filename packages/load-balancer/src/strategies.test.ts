import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  type BalancingStrategy,
  dynamic,
  type EndpointState,
  LoadBalancer,
  leastConnections,
  type PickHandle,
  peakEwma,
  powerOfTwoChoices,
  random,
  roundRobin,
  STRATEGY_NAMES,
  strategyByName,
  weightedRandom,
  weightedRoundRobin,
} from './index.ts';
import { endpoints, manualClock, seeded, sequence, tally } from './testing/helpers.ts';

describe('roundRobin', () => {
  it('visits every endpoint in turn', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: roundRobin() });
    expect(sequence(lb, 7).join('')).toBe('abcabca');
  });

  it('continues the rotation when an endpoint leaves', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: roundRobin() });
    expect(sequence(lb, 2).join('')).toBe('ab');
    lb.remove('a');
    expect(sequence(lb, 4).join('')).toBe('bcbc');
  });
});

describe('weightedRoundRobin', () => {
  it('produces nginx’s smooth sequence for weights 5, 1, 1', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3, [5, 1, 1]), strategy: weightedRoundRobin() });
    expect(sequence(lb, 14).join('')).toBe('aabacaa'.repeat(2));
  });

  it.each([
    [[1, 1, 1], 'abc'],
    [[2, 1], 'aba'],
    [[3, 2], 'ababa'],
    [[4, 2, 1], 'abacaba'],
  ])('weights %j give %s', (weights, expected) => {
    const lb = new LoadBalancer({ endpoints: endpoints(weights.length, weights), strategy: weightedRoundRobin() });
    expect(sequence(lb, expected.length * 3).join('')).toBe(expected.repeat(3));
  });

  it('serves every endpoint exactly its weight per cycle, never more than the weight in a row', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 8 }), (weights) => {
        const lb = new LoadBalancer({ endpoints: endpoints(weights.length, weights), strategy: weightedRoundRobin() });
        const total = weights.reduce((a, b) => a + b, 0);
        const ids = sequence(lb, total);
        const counts = tally(ids);
        weights.forEach((w, i) => {
          expect(counts[String.fromCharCode(97 + i)]).toBe(w);
        });
        lb.close();
      }),
    );
  });

  it('follows a weight change at run time', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2, [1, 1]), strategy: weightedRoundRobin() });
    sequence(lb, 2);
    lb.setWeight('b', 3);
    expect(tally(sequence(lb, 40))).toEqual({ a: 10, b: 30 });
  });
});

describe('random and weightedRandom', () => {
  it('random spreads uniformly', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(4, [1, 5, 1, 1]), strategy: random(), random: seeded(1) });
    const counts = tally(sequence(lb, 40_000));
    for (const id of 'abcd') expect(counts[id]! / 40_000).toBeCloseTo(0.25, 1);
  });

  it('weightedRandom follows weights', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3, [1, 2, 7]), strategy: weightedRandom(), random: seeded(2) });
    const counts = tally(sequence(lb, 50_000));
    expect(counts.a! / 50_000).toBeCloseTo(0.1, 1);
    expect(counts.b! / 50_000).toBeCloseTo(0.2, 1);
    expect(counts.c! / 50_000).toBeCloseTo(0.7, 1);
  });

  it('repeats exactly with the same seed', () => {
    const run = () => sequence(new LoadBalancer({ endpoints: endpoints(5), strategy: random(), random: seeded(7) }), 50).join('');
    expect(run()).toBe(run());
  });
});

describe('leastConnections', () => {
  it('sends to the endpoint with the fewest requests in flight', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: leastConnections(), random: seeded() });
    const held: PickHandle[] = [];
    for (let i = 0; i < 9; i++) held.push(lb.pick());
    expect(lb.stats().endpoints.map((e) => e.inFlight)).toEqual([3, 3, 3]);
    for (const h of held) if (h.endpoint.id === 'b') h.done({ ok: true });
    expect(lb.pick().endpoint.id).toBe('b');
  });

  it('counts in-flight per unit of weight', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2, [1, 3]), strategy: leastConnections(), random: seeded() });
    for (let i = 0; i < 40; i++) lb.pick();
    const [a, b] = lb.stats().endpoints;
    expect(a!.inFlight).toBe(10);
    expect(b!.inFlight).toBe(30);
  });

  it('always picks a least-loaded candidate through picks, completions and health changes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('pick', 'pick', 'pick', 'done', 'done', 'down', 'up', 'cancel'), fc.nat()), { maxLength: 300 }),
        fc.boolean(),
        (ops, weighted) => {
          const lb = new LoadBalancer({
            endpoints: endpoints(6, weighted ? [1, 2, 3, 1, 2, 3] : []),
            strategy: leastConnections(),
            random: seeded(),
            outlierDetection: false,
            panicThresholdPercent: 0,
          });
          const held: PickHandle[] = [];
          for (const [op, n] of ops) {
            if (op === 'pick') {
              try {
                const available = lb.stats().endpoints.filter((e) => e.state === 'healthy');
                const h = lb.pick();
                const least = Math.min(...available.map((e) => e.inFlight / e.weight));
                const picked = lb.stats().endpoints.find((e) => e.id === h.endpoint.id)!;
                expect((picked.inFlight - 1) / picked.weight).toBe(least);
                held.push(h);
              } catch (error) {
                expect(lb.stats().available).toBe(0);
                expect(error).toBeInstanceOf(Error);
              }
            } else if ((op === 'done' || op === 'cancel') && held.length > 0) {
              held.splice(n % held.length, 1)[0]!.done({ ok: true, cancelled: op === 'cancel' });
            } else if (op === 'down') {
              lb.markDown(String.fromCharCode(97 + (n % 6)));
            } else if (op === 'up') {
              lb.markUp(String.fromCharCode(97 + (n % 6)));
            }
          }
          lb.close();
        },
      ),
      { numRuns: 100 },
    );
  });

  it('breaks ties at random', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(4), strategy: leastConnections(), random: seeded(3) });
    const counts = tally(sequence(lb, 20_000));
    for (const id of 'abcd') expect(counts[id]! / 20_000).toBeCloseTo(0.25, 1);
  });
});

describe('powerOfTwoChoices', () => {
  it('never sends to the busier of two endpoints', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: powerOfTwoChoices(), random: seeded() });
    const first = lb.pick();
    for (let i = 0; i < 20; i++) {
      const h = lb.pick();
      expect(h.endpoint.id).not.toBe(first.endpoint.id);
      h.done({ ok: true });
    }
  });

  it('keeps in-flight counts balanced under held requests', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 20 }), fc.integer({ min: 1, max: 1_000 }), fc.integer(), (n, picks, seed) => {
        const lb = new LoadBalancer({ endpoints: endpoints(n), strategy: powerOfTwoChoices(), random: seeded(seed) });
        for (let i = 0; i < picks; i++) lb.pick();
        const loads = lb.stats().endpoints.map((e) => e.inFlight);
        // The power of two choices keeps the gap to the mean at O(log log n).
        expect(Math.max(...loads) - picks / n).toBeLessThanOrEqual(4);
      }),
      { numRuns: 50 },
    );
  });

  it('spreads evenly when idle, and by weight when weights differ', () => {
    const even = new LoadBalancer({ endpoints: endpoints(4), strategy: powerOfTwoChoices(), random: seeded(4) });
    for (const id of 'abcd') expect(tally(sequence(even, 20_000))[id]! / 20_000).toBeCloseTo(0.25, 1);
    const weighted = new LoadBalancer({ endpoints: endpoints(2, [1, 3]), strategy: powerOfTwoChoices(), random: seeded(5) });
    const held: PickHandle[] = [];
    for (let i = 0; i < 400; i++) held.push(weighted.pick());
    const [a, b] = weighted.stats().endpoints;
    expect(b!.inFlight / a!.inFlight).toBeGreaterThan(2.5);
    expect(b!.inFlight / a!.inFlight).toBeLessThan(3.5);
  });

  it('shares idle traffic in proportion to weight', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2, [1, 3]), strategy: powerOfTwoChoices(), random: seeded(13) });
    expect(tally(sequence(lb, 20_000)).b! / 20_000).toBeCloseTo(0.75, 1);
    const three = new LoadBalancer({ endpoints: endpoints(3, [1, 2, 7]), strategy: powerOfTwoChoices(), random: seeded(14) });
    const counts = tally(sequence(three, 30_000));
    expect(counts.a!).toBeLessThan(counts.b!);
    expect(counts.b!).toBeLessThan(counts.c!);
  });

  it('rejects a negative bias', () => {
    expect(() => powerOfTwoChoices({ activeRequestBias: -1 })).toThrow(/activeRequestBias must be a finite number >= 0, got -1/);
  });
});

describe('peakEwma', () => {
  it('sends most requests to the faster endpoint', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: peakEwma(), clock, random: seeded(6) });
    const counts = { a: 0, b: 0 };
    for (let i = 0; i < 1_000; i++) {
      const h = lb.pick();
      const id = h.endpoint.id as 'a' | 'b';
      counts[id]++;
      clock.advance(1);
      h.done({ ok: true, latencyMs: id === 'a' ? 5 : 50 });
    }
    expect(counts.a).toBeGreaterThan(900);
  });

  it('penalises a fresh endpoint with a request in flight until it answers', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(1), strategy: peakEwma(), clock, random: seeded() });
    sequence(lb, 5);
    lb.add({ id: 'z', address: 'http://127.0.0.1:9999' });
    const seen: string[] = [];
    const probes: PickHandle[] = [];
    for (let i = 0; i < 50; i++) {
      const h = lb.pick();
      seen.push(h.endpoint.id);
      if (h.endpoint.id === 'z') probes.push(h);
      else h.done({ ok: true, latencyMs: 1 });
    }
    // An unmeasured endpoint costs nothing while idle, so it is probed, but only once.
    expect(probes).toHaveLength(1);
    probes[0]!.done({ ok: true, latencyMs: 1 });
    expect(seen.filter((id) => id === 'z')).toHaveLength(1);
  });

  it('forgets a latency peak with time, so a recovered endpoint is tried again', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: peakEwma({ decayMs: 1_000 }), clock, random: seeded(8) });
    // b answers once very slowly.
    let h = lb.pick();
    while (h.endpoint.id !== 'b') {
      h.done({ ok: true, latencyMs: 10 });
      h = lb.pick();
    }
    h.done({ ok: true, latencyMs: 10_000 });
    const firstPickOfB = (): number => {
      for (let i = 0; i < 300; i++) {
        const x = lb.pick();
        x.done({ ok: true, latencyMs: 10 });
        if (x.endpoint.id === 'b') return clock.now();
        clock.advance(100);
      }
      return Number.POSITIVE_INFINITY;
    };
    // 10 000 ms against 10 ms: ln(1000) ≈ 6.9 time constants before b looks cheaper again.
    const at = firstPickOfB();
    expect(at).toBeGreaterThan(6_000);
    expect(at).toBeLessThan(9_000);
  });
});

describe('dynamic', () => {
  it('shifts traffic away from a loaded, failing or slow endpoint', () => {
    const clock = manualClock();
    const strategy = dynamic({ intervalMs: 100 });
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy, clock, random: seeded(), outlierDetection: false, latencyDecayMs: 5 });
    expect(Object.keys(tally(sequence(lb, 30))).sort()).toEqual(['a', 'b', 'c']);
    let bCalls = 0;
    for (let i = 0; i < 30; i++) {
      clock.advance(10);
      const h = lb.pick();
      const id = h.endpoint.id;
      h.done({ ok: id !== 'b' || bCalls++ % 2 === 0, latencyMs: id === 'c' ? 40 : 10, load: id === 'a' ? 0.5 : 0 });
    }
    clock.advance(100);
    const errorRate = lb.stats().endpoints[1]!.errorRate;
    sequence(lb, 1);
    const weights = strategy.weights();
    // a reports half load; b fails every other request; c is four times slower.
    expect(weights.get('a')).toBeCloseTo(0.5, 2);
    expect(errorRate).toBeGreaterThan(0.1);
    expect(weights.get('b')).toBeCloseTo(1 - errorRate, 2);
    expect(weights.get('c')).toBeCloseTo(0.25, 2);
  });

  it('reads load through a callback and keeps a floor', () => {
    const clock = manualClock();
    const strategy = dynamic({ load: (e) => (e.id === 'a' ? 1 : 0), minWeightPercent: 10 });
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy, clock, random: seeded(11) });
    const counts = tally(sequence(lb, 11_000));
    expect(strategy.weights()).toEqual(
      new Map([
        ['a', 0.1],
        ['b', 1],
      ]),
    );
    expect(counts.a! / 11_000).toBeCloseTo(1 / 11, 1);
  });

  it('between recomputations, sends to the endpoint with fewer requests in flight per unit of weight', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: dynamic(), clock: manualClock(), random: seeded(12) });
    for (let i = 0; i < 40; i++) lb.pick();
    const [a, b] = lb.stats().endpoints;
    expect(Math.abs(a!.inFlight - b!.inFlight)).toBeLessThanOrEqual(1);
  });

  it('recomputes weights only once intervalMs has passed', () => {
    const clock = manualClock();
    let loadOfA = 0;
    const strategy = dynamic({ intervalMs: 1_000, load: (e) => (e.id === 'a' ? loadOfA : 0) });
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy, clock, random: seeded(3) });
    sequence(lb, 1);
    expect(strategy.weights().get('a')).toBe(1);
    loadOfA = 0.75;
    clock.advance(999);
    sequence(lb, 1);
    expect(strategy.weights().get('a')).toBe(1);
    clock.advance(1);
    sequence(lb, 1);
    expect(strategy.weights().get('a')).toBeCloseTo(0.25, 10);
  });

  it('holds no timer, before or after close()', () => {
    vi.useFakeTimers();
    try {
      const strategy = dynamic({ intervalMs: 50 });
      const lb = new LoadBalancer({ endpoints: endpoints(3), strategy });
      sequence(lb, 10);
      vi.advanceTimersByTime(200);
      sequence(lb, 10);
      expect(vi.getTimerCount()).toBe(0);
      lb.close();
      expect(vi.getTimerCount()).toBe(0);
      // The strategy is free again once its balancer closed.
      const next = new LoadBalancer({ endpoints: endpoints(2), strategy });
      expect(sequence(next, 4)).toHaveLength(4);
      next.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('validates its options', () => {
    expect(() => dynamic({ intervalMs: -5 })).toThrow(/intervalMs/);
    expect(() => dynamic({ load: 3 as never })).toThrow(/load must be a function/);
  });
});

describe('custom strategies', () => {
  it('plug in through the BalancingStrategy interface', () => {
    const calls: string[] = [];
    const lastOne: BalancingStrategy = {
      name: 'last',
      pick: (candidates) => candidates[candidates.length - 1] as EndpointState,
      onAdd: (e) => calls.push(`add ${e.id}`),
      onDone: (e, o) => calls.push(`done ${e.id} ${o.ok}`),
    };
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: lastOne });
    lb.pick().done({ ok: true });
    expect(calls).toEqual(['add a', 'add b', 'done b true']);
    expect(lb.stats().strategy).toBe('last');
  });

  it('are rejected when they return something that is not a candidate', () => {
    const rogue: BalancingStrategy = { name: 'rogue', pick: () => ({ id: 'x' }) as EndpointState };
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: rogue });
    expect(() => lb.pick()).toThrow('the value strategy "rogue" pick() returned must be one of the candidates it was given, got "x"');
  });

  it('serve one balancer at a time', () => {
    const strategy = roundRobin();
    const lb = new LoadBalancer({ strategy });
    expect(() => new LoadBalancer({ strategy })).toThrow(/not used by another LoadBalancer/);
    lb.close();
    expect(() => new LoadBalancer({ strategy })).not.toThrow();
  });
});

describe('strategyByName', () => {
  it.each(STRATEGY_NAMES)('builds %s, which reports that name', (name) => {
    expect(strategyByName(name).name).toBe(name);
  });

  it('returns a new strategy each time, never a shared one', () => {
    expect(strategyByName('round-robin')).not.toBe(strategyByName('round-robin'));
  });

  it('names the option and the valid names for an unknown strategy', () => {
    expect(() => strategyByName('fastest')).toThrow(/strategy must be one of "round-robin", .*"p2c".*, got "fastest"/);
  });
});
