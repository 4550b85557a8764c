import { isBallastError, isInvalidOptionError } from '@ballast/common';
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import {
  dynamic,
  hashAffinity,
  isNoEndpointAvailableError,
  LoadBalancer,
  type LoadBalancerEvents,
  leastConnections,
  NoEndpointAvailableError,
  type PickHandle,
  peakEwma,
  powerOfTwoChoices,
  random,
  roundRobin,
  weightedRandom,
  weightedRoundRobin,
} from './index.ts';
import { endpoints, manualClock, seeded, sequence, tally } from './testing/helpers.ts';

function fail(lb: LoadBalancer, id: string, times: number): void {
  let failed = 0;
  for (let guard = 0; failed < times && guard < 10_000; guard++) {
    const h = lb.pick();
    const ok = h.endpoint.id !== id;
    if (!ok) failed++;
    h.done({ ok, latencyMs: 1 });
  }
}

function ejectedIds(lb: LoadBalancer): string[] {
  return lb
    .stats()
    .endpoints.filter((e) => e.state === 'ejected')
    .map((e) => e.id);
}

function record<K extends keyof LoadBalancerEvents>(lb: LoadBalancer, event: K): Array<LoadBalancerEvents[K]> {
  const seen: Array<LoadBalancerEvents[K]> = [];
  lb.on(event, (payload) => seen.push(payload));
  return seen;
}

describe('LoadBalancer: accounting', () => {
  it('counts a request in flight from pick() to done()', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    const h = lb.pick();
    expect(h.endpoint).toEqual({ id: 'a', address: 'http://127.0.0.1:8081', weight: 1, metadata: {} });
    expect(lb.stats().endpoints[0]).toMatchObject({ inFlight: 1, picks: 1 });
    h.done({ ok: true, latencyMs: 12 });
    expect(lb.stats().endpoints[0]).toMatchObject({ inFlight: 0, successes: 1, failures: 0, latencyMs: 12 });
  });

  it('makes done() idempotent', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    const h = lb.pick();
    h.done({ ok: false });
    h.done({ ok: false });
    h.done({ ok: true });
    expect(lb.stats().endpoints[0]).toMatchObject({ inFlight: 0, successes: 0, failures: 1 });
  });

  it('releases a cancelled request without recording latency or failure', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    lb.pick().done({ ok: false, cancelled: true });
    {
      using _abandoned = lb.pick();
    }
    expect(lb.stats().endpoints[0]).toMatchObject({ inFlight: 0, cancelled: 2, failures: 0, successes: 0, latencyMs: null });
  });

  it('measures latency itself when the reported one is not a valid duration', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(1), clock, strategy: peakEwma() });
    for (const latencyMs of [Number.NaN, -5, Number.POSITIVE_INFINITY]) {
      const h = lb.pick();
      clock.advance(8);
      h.done({ ok: true, latencyMs });
    }
    expect(lb.stats().endpoints[0]!.latencyMs).toBeCloseTo(8, 5);
  });

  it('measures latency from pick(), or from start() when called', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(1), clock });
    const h = lb.pick();
    clock.advance(50);
    h.start();
    clock.advance(20);
    h.done({ ok: true });
    expect(lb.stats().endpoints[0]!.latencyMs).toBe(20);
  });

  it('keeps in-flight accounting across remove and re-add', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    const held = [lb.pick(), lb.pick(), lb.pick()];
    const removed = record(lb, 'removed');
    lb.remove('a');
    expect(removed).toEqual([{ endpoint: held[0]!.endpoint, inFlight: 2 }]);
    expect(lb.stats().inFlight).toBe(3);
    held[0]!.done({ ok: true });
    lb.add({ id: 'a', address: 'http://127.0.0.1:8081' });
    expect(lb.stats().endpoints.find((e) => e.id === 'a')!.inFlight).toBe(1);
    held[2]!.done({ ok: true });
    held[1]!.done({ ok: true });
    expect(lb.stats().endpoints.map((e) => e.inFlight)).toEqual([0, 0]);
  });

  it('does not revive an endpoint removed after its requests finished', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    sequence(lb, 4);
    lb.remove('a');
    lb.add({ id: 'a', address: 'http://127.0.0.1:9000' });
    expect(lb.stats().endpoints.find((e) => e.id === 'a')).toMatchObject({ picks: 0, address: 'http://127.0.0.1:9000' });
  });

  it('re-weights at run time and reports it on new handles', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    expect(lb.setWeight('a', 4)).toBe(true);
    expect(lb.pick().endpoint.weight).toBe(4);
    expect(lb.setWeight('zz', 4)).toBe(false);
    expect(() => lb.setWeight('a', 0)).toThrow('weight must be a finite number > 0, got 0');
  });
});

describe('LoadBalancer: drain', () => {
  it('stops new picks and resolves when the last request finishes', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    const held = lb.pick();
    const drained = record(lb, 'drained');
    let resolved = false;
    const done = lb.drain('a').then(() => {
      resolved = true;
    });
    expect(tally(sequence(lb, 4))).toEqual({ b: 4 });
    expect(lb.stats().endpoints[0]!.state).toBe('draining');
    await Promise.resolve();
    expect(resolved).toBe(false);
    held.done({ ok: true });
    await done;
    expect(drained).toHaveLength(1);
    expect(lb.undrain('a')).toBe(true);
    expect(tally(sequence(lb, 4))).toEqual({ a: 2, b: 2 });
  });

  it('resolves at once for an idle or unknown endpoint', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    const drained = record(lb, 'drained');
    await lb.drain('a');
    await lb.drain('a');
    expect(drained).toHaveLength(1);
    await lb.drain('nope');
    expect(() => lb.pick()).toThrow(expect.objectContaining({ reason: 'unavailable' }));
  });

  it('resolves when undrain() ends the drain early, without a drained event', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    const held = lb.pick();
    const drained = record(lb, 'drained');
    const pending = lb.drain('a');
    expect(lb.undrain('a')).toBe(true);
    await pending;
    expect(drained).toHaveLength(0);
    expect(lb.stats().endpoints[0]).toMatchObject({ state: 'healthy', inFlight: 1 });
    held.done({ ok: true });
    expect(drained).toHaveLength(0);
  });

  it('resolves when an endpoint removed while draining is added again, and keeps its accounting', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    const held = lb.pick();
    const pending = lb.drain('a');
    lb.remove('a');
    lb.add({ id: 'a', address: 'http://127.0.0.1:8081' });
    await pending;
    expect(lb.stats().endpoints.find((e) => e.id === 'a')).toMatchObject({ state: 'healthy', inFlight: 1 });
    held.done({ ok: true });
    expect(lb.stats().inFlight).toBe(0);
  });

  it('resolves for an endpoint removed while draining once its last request finishes', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin() });
    const held = lb.pick();
    let resolved = false;
    const pending = lb.drain('a').then(() => {
      resolved = true;
    });
    lb.remove('a');
    await Promise.resolve();
    expect(resolved).toBe(false);
    expect(lb.stats().inFlight).toBe(1);
    held.done({ ok: true });
    await pending;
    expect(lb.stats().inFlight).toBe(0);
  });
});

describe('LoadBalancer: outlier ejection', () => {
  it('ejects after consecutive failures, longer each time, and restores', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(10), strategy: roundRobin(), clock });
    const ejected = record(lb, 'ejected');
    const restored = record(lb, 'restored');
    fail(lb, 'a', 5);
    expect(ejected).toEqual([
      { endpoint: expect.objectContaining({ id: 'a' }), reason: 'consecutiveFailures', durationMs: 30_000, ejections: 1 },
    ]);
    expect(lb.stats().endpoints[0]!.state).toBe('ejected');
    expect(sequence(lb, 90)).not.toContain('a');
    clock.advance(29_999);
    expect(sequence(lb, 9)).not.toContain('a');
    clock.advance(1);
    expect(sequence(lb, 10)).toContain('a');
    expect(restored).toHaveLength(1);
    // Failing again soon after: the second ejection lasts twice as long.
    fail(lb, 'a', 5);
    expect(ejected[1]).toMatchObject({ durationMs: 60_000, ejections: 2 });
    clock.advance(60_000);
    sequence(lb, 10);
    // A long healthy spell forgives earlier ejections.
    clock.advance(10 * 30_000);
    fail(lb, 'a', 5);
    expect(ejected[2]).toMatchObject({ durationMs: 30_000, ejections: 1 });
  });

  it('caps the ejection time, and the multiplier with it, so a healthy spell shortens the next ejection at once', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({
      endpoints: endpoints(10),
      strategy: roundRobin(),
      clock,
      outlierDetection: { baseEjectionTimeMs: 1_000, maxEjectionTimeMs: 2_500 },
    });
    const ejected = record(lb, 'ejected');
    for (let i = 0; i < 6; i++) {
      fail(lb, 'a', 5);
      clock.advance(ejected.at(-1)!.durationMs);
    }
    expect(ejected.map((e) => e.durationMs)).toEqual([1_000, 2_000, 2_500, 2_500, 2_500, 2_500]);
    expect(ejected.map((e) => e.ejections)).toEqual([1, 2, 3, 3, 3, 3]);
    sequence(lb, 10);
    // Two base periods healthy forgive two ejections: 3 - 2 + 1.
    clock.advance(2_000);
    fail(lb, 'a', 5);
    expect(ejected.at(-1)).toMatchObject({ ejections: 2, durationMs: 2_000 });
  });

  it('ejects on the failure rate once enough requests were seen', () => {
    const lb = new LoadBalancer({
      endpoints: endpoints(10),
      strategy: roundRobin(),
      clock: manualClock(),
      outlierDetection: { consecutiveFailures: 0, failureRate: 0.5, failureRateMinimumRequests: 10 },
    });
    const ejected = record(lb, 'ejected');
    for (let i = 0; i < 200 && ejected.length === 0; i++) {
      const h = lb.pick();
      h.done({ ok: h.endpoint.id !== 'c' || i % 3 === 0 });
    }
    expect(ejected).toEqual([expect.objectContaining({ reason: 'failureRate', endpoint: expect.objectContaining({ id: 'c' }) })]);
    expect(lb.stats().endpoints[2]!.picks).toBe(10);
  });

  it('ejects at most maxEjectionPercent of the endpoints (and always one)', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: roundRobin(), clock: manualClock() });
    fail(lb, 'a', 5);
    fail(lb, 'b', 5);
    expect(lb.stats().endpoints.map((e) => e.state)).toEqual(['ejected', 'healthy', 'healthy']);
    const wide = new LoadBalancer({
      endpoints: endpoints(10),
      strategy: roundRobin(),
      clock: manualClock(),
      outlierDetection: { maxEjectionPercent: 20 },
    });
    for (const id of 'abc') fail(wide, id, 5);
    expect(wide.stats().endpoints.filter((e) => e.state === 'ejected')).toHaveLength(2);
  });

  it('ejects the next outlier once an ejected endpoint returns', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(10), strategy: roundRobin(), clock });
    fail(lb, 'a', 5);
    fail(lb, 'b', 5);
    expect(ejectedIds(lb)).toEqual(['a']);
    clock.advance(30_000);
    fail(lb, 'b', 5);
    expect(ejectedIds(lb)).toEqual(['b']);
  });

  it('frees the ejection slot of an endpoint removed while ejected', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(10), strategy: roundRobin(), clock: manualClock() });
    fail(lb, 'a', 5);
    lb.remove('a');
    fail(lb, 'b', 5);
    expect(lb.stats().endpoints.find((e) => e.id === 'b')!.state).toBe('ejected');
  });

  it('can be switched off', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: roundRobin(), outlierDetection: false });
    fail(lb, 'a', 50);
    expect(lb.stats().endpoints[0]!.state).toBe('healthy');
  });
});

describe('LoadBalancer: external failure detector', () => {
  it('takes an endpoint out on markDown and back on markUp', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: roundRobin() });
    const down = record(lb, 'down');
    const up = record(lb, 'up');
    expect(lb.markDown('b', 'heartbeat lost')).toBe(true);
    expect(lb.markDown('b')).toBe(false);
    expect(down).toEqual([{ endpoint: expect.objectContaining({ id: 'b' }), reason: 'heartbeat lost' }]);
    expect(lb.stats().endpoints[1]).toMatchObject({ state: 'down', downReason: 'heartbeat lost' });
    expect(sequence(lb, 6)).not.toContain('b');
    expect(lb.markUp('b')).toBe(true);
    expect(lb.markUp('b')).toBe(false);
    expect(up).toHaveLength(1);
    expect(sequence(lb, 6)).toContain('b');
    expect(lb.markDown('unknown')).toBe(false);
  });
});

describe('LoadBalancer: panic threshold', () => {
  it('balances over every endpoint when fewer than half are healthy', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(4), strategy: roundRobin() });
    const panic = record(lb, 'panic');
    const panicEnd = record(lb, 'panicEnd');
    lb.markDown('a');
    expect(sequence(lb, 6)).not.toContain('a');
    lb.markDown('b');
    expect(tally(sequence(lb, 6))).toEqual({ c: 3, d: 3 }); // exactly half healthy: no panic
    lb.markDown('c');
    expect(tally(sequence(lb, 8))).toEqual({ a: 2, b: 2, c: 2, d: 2 });
    expect(panic).toEqual([{ healthy: 1, total: 4 }]);
    expect(lb.stats().panic).toBe(true);
    lb.markUp('c');
    expect(sequence(lb, 4)).not.toContain('a');
    expect(panicEnd).toEqual([{ healthy: 2, total: 4 }]);
  });

  it('throws when every endpoint is down and panic mode is off', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), panicThresholdPercent: 0 });
    lb.markDown('a');
    lb.markDown('b');
    expect(() => lb.pick()).toThrow(NoEndpointAvailableError);
    expect(lb.stats().noEndpoint).toBe(1);
  });
});

describe('LoadBalancer: slow start', () => {
  it('ramps a returning endpoint’s share linearly over the window', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({
      endpoints: endpoints(2),
      strategy: roundRobin(),
      clock,
      random: seeded(9),
      slowStart: { windowMs: 10_000, minWeightPercent: 10 },
    });
    lb.markDown('b');
    lb.markUp('b');
    const shares: number[] = [];
    for (let step = 0; step < 5; step++) {
      shares.push((tally(sequence(lb, 4_000)).b ?? 0) / 4_000);
      expect(lb.stats().endpoints[1]!.state).toBe('warming');
      clock.advance(2_000);
    }
    sequence(lb, 1);
    expect(lb.stats().endpoints[1]).toMatchObject({ state: 'healthy', effectiveWeight: 1 });
    // Round robin offers b half the time; slow start keeps ~10%, 20%, 40%, 60%, 80% of those.
    const expected = [0.1, 0.2, 0.4, 0.6, 0.8].map((f) => f / (1 + f));
    shares.forEach((share, i) => {
      expect(share).toBeCloseTo(expected[i]!, 1);
    });
    expect(shares).toEqual([...shares].sort((x, y) => x - y));
  });

  it('applies to endpoints added at run time and restored after ejection, not to the initial ones', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(10), strategy: roundRobin(), clock, slowStart: { windowMs: 1_000 } });
    expect(lb.stats().endpoints.every((e) => e.state === 'healthy')).toBe(true);
    lb.add({ id: 'new', address: 'http://127.0.0.1:9000' });
    fail(lb, 'a', 5);
    clock.advance(30_000);
    sequence(lb, 1);
    const states = Object.fromEntries(lb.stats().endpoints.map((e) => [e.id, e.state]));
    expect(states.a).toBe('warming');
    expect(states.new).toBe('healthy');
  });

  it.each([
    ['least-connections', leastConnections],
    ['p2c', powerOfTwoChoices],
    ['peak-ewma', peakEwma],
    ['dynamic', dynamic],
    ['round-robin', roundRobin],
  ] as const)('ramps a newcomer under sustained load with %s, which would otherwise fill it at once', (_name, strategy) => {
    const clock = manualClock();
    const lb = new LoadBalancer({
      endpoints: endpoints(9),
      strategy: strategy(),
      clock,
      random: seeded(5),
      slowStart: { windowMs: 10_000, minWeightPercent: 10 },
    });
    // 90 requests always in flight, each finishing 90 picks after it started.
    const held: PickHandle[] = Array.from({ length: 90 }, () => lb.pick());
    lb.add({ id: 'new', address: 'http://127.0.0.1:9000' });
    const shareOfFair: number[] = [];
    for (let second = 0; second < 10; second++) {
      let picked = 0;
      for (let i = 0; i < 1_000; i++) {
        clock.advance(1);
        held.shift()!.done({ ok: true, latencyMs: 10 });
        const h = lb.pick();
        if (h.endpoint.id === 'new') picked++;
        held.push(h);
      }
      shareOfFair.push((picked / 1_000) * 10);
    }
    // The ramp averages 0.1 over the first second and 0.95 over the last.
    expect(shareOfFair[0]).toBeLessThan(0.25);
    expect(shareOfFair[4]).toBeGreaterThan(0.25);
    expect(shareOfFair[4]).toBeLessThan(0.7);
    expect(shareOfFair[9]).toBeGreaterThan(0.75);
    for (const h of held) h.done({ ok: true });
    expect(lb.stats().inFlight).toBe(0);
  });

  it('keeps a key on the same endpoint as the ramp grows', () => {
    const clock = manualClock();
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: roundRobin(), clock, slowStart: { windowMs: 1_000 } });
    lb.markDown('b');
    lb.markUp('b');
    clock.advance(500);
    // With a key, admission is a property of the key: once admitted, always admitted.
    const admitted = Array.from({ length: 200 }, (_, i) => `user-${i}`).filter((key) => {
      const h = lb.pick({ key });
      h.done({ ok: true });
      return h.endpoint.id === 'b';
    });
    clock.advance(200);
    for (const key of admitted) {
      let seen = false;
      for (let i = 0; i < 2 && !seen; i++) {
        const h = lb.pick({ key });
        h.done({ ok: true });
        seen = h.endpoint.id === 'b';
      }
      expect(seen).toBe(true);
    }
  });
});

describe('LoadBalancer: errors and options', () => {
  it('throws a typed error when there is no endpoint', () => {
    const lb = new LoadBalancer();
    let caught: unknown;
    try {
      lb.pick();
    } catch (error) {
      caught = error;
    }
    expect(isNoEndpointAvailableError(caught)).toBe(true);
    expect(isBallastError(caught)).toBe(true);
    expect(caught).toMatchObject({ code: 'ERR_BALLAST_NO_ENDPOINT', reason: 'empty', name: 'NoEndpointAvailableError' });
  });

  it.each([
    [{ endpoints: [{ id: '', address: 'x' }] }, 'endpoints[0].id must be a non-empty string, got ""'],
    [{ endpoints: [{ id: 'a', address: 'x', weight: -1 }] }, 'endpoints[0].weight must be a finite number > 0, got -1'],
    [
      {
        endpoints: [
          { id: 'a', address: 'x' },
          { id: 'a', address: 'y' },
        ],
      },
      'endpoints must be endpoints with unique ids, got "a"',
    ],
    [{ strategy: {} }, 'strategy must be an object with a pick() method, got {}'],
    [{ clock: 5 }, 'clock must be an object with a now() method, got 5'],
    [{ random: 'x' }, 'random must be a function, got "x"'],
    [{ panicThresholdPercent: 120 }, 'panicThresholdPercent must be a finite number between 0 and 100, got 120'],
    [{ outlierDetection: { consecutiveFailures: 1.5 } }, 'outlierDetection.consecutiveFailures must be an integer >= 0, got 1.5'],
    [{ slowStart: { windowMs: -1 } }, 'slowStart.windowMs must be a finite number between 0 and 2147483647, got -1'],
  ])('rejects %j', (options, message) => {
    let caught: unknown;
    try {
      new LoadBalancer(options as never);
    } catch (error) {
      caught = error;
    }
    expect(isInvalidOptionError(caught)).toBe(true);
    expect((caught as Error).message).toBe(message);
  });

  it('rejects a duplicate id on add', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    expect(() => lb.add({ id: 'a', address: 'y' })).toThrow('endpoint.id must be an id not already in the balancer, got "a"');
  });
});

describe('LoadBalancer: lifecycle', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('follows fake timers through the default clock', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(10), strategy: roundRobin() });
    fail(lb, 'a', 5);
    expect(lb.stats().endpoints[0]!.state).toBe('ejected');
    vi.advanceTimersByTime(30_000);
    expect(lb.stats().endpoints[0]!.state).toBe('healthy');
  });

  it('closes: pick() throws, drains resolve, listeners go, no timer is left', async () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: powerOfTwoChoices() });
    const h: PickHandle = lb.pick();
    const drained = lb.drain(h.endpoint.id);
    lb.on('removed', () => {});
    lb.close();
    lb.close();
    await drained;
    expect(() => lb.pick()).toThrow(expect.objectContaining({ reason: 'closed' }));
    expect(() => lb.add({ id: 'z', address: 'x' })).toThrow(NoEndpointAvailableError);
    h.done({ ok: true });
    expect(lb.stats().inFlight).toBe(0);
    // Changes after close do not bring endpoints back.
    lb.markDown('a');
    lb.markUp('a');
    lb.setWeight('b', 2);
    expect(() => lb.pick()).toThrow(expect.objectContaining({ reason: 'closed' }));
    expect(vi.getTimerCount()).toBe(0);
  });

  it('unsubscribes a listener', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    const seen: string[] = [];
    const off = lb.on('added', ({ endpoint }) => seen.push(endpoint.id));
    lb.add({ id: 'b', address: 'x' });
    off();
    lb.add({ id: 'c', address: 'x' });
    expect(seen).toEqual(['b']);
    expect(lb.endpoints().map((e) => e.id)).toEqual(['a', 'b', 'c']);
    expect(lb.size).toBe(3);
    expect(lb.has('c')).toBe(true);
  });
});

describe('LoadBalancer: types', () => {
  it('types events, handles and stats', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(1) });
    expectTypeOf(lb.pick()).toEqualTypeOf<PickHandle>();
    expectTypeOf(lb.pick().endpoint.metadata).toEqualTypeOf<Readonly<Record<string, unknown>>>();
    lb.on('ejected', (event) => {
      expectTypeOf(event.reason).toEqualTypeOf<'consecutiveFailures' | 'failureRate'>();
      expectTypeOf(event.durationMs).toBeNumber();
    });
    expectTypeOf(lb.stats().endpoints[0]!.state).toEqualTypeOf<'healthy' | 'warming' | 'ejected' | 'down' | 'draining'>();
    expectTypeOf(lb.drain).returns.toEqualTypeOf<Promise<void>>();
    // @ts-expect-error: not an event of the balancer
    lb.on('opened', () => {});
  });
});

describe('LoadBalancer: accounting under random operations', () => {
  const strategies = {
    roundRobin,
    weightedRoundRobin,
    random,
    weightedRandom,
    leastConnections,
    powerOfTwoChoices,
    peakEwma,
    dynamic,
    ring: () => hashAffinity({ partitioner: 'ring' }),
    maglev: () => hashAffinity({ partitioner: 'maglev' }),
    boundedLoad: () => hashAffinity({ partitioner: 'bounded-load' }),
  };

  it.each(Object.entries(strategies))(
    '%s: in-flight counts match the open handles through cancels, removals, re-adds, drains and health changes',
    async (_name, strategy) => {
      for (let seed = 1; seed <= 5; seed++) {
        const r = seeded(seed);
        const clock = manualClock();
        const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
        const lb = new LoadBalancer({
          endpoints: ids.slice(0, 4).map((id) => ({ id, address: `http://127.0.0.1/${id}` })),
          strategy: strategy(),
          clock,
          random: r,
          slowStart: { windowMs: 500 },
          outlierDetection: { consecutiveFailures: 3, baseEjectionTimeMs: 200, maxEjectionPercent: 50 },
        });
        const held: PickHandle[] = [];
        const drains: Array<Promise<void>> = [];
        for (let step = 0; step < 400; step++) {
          const op = r();
          const id = ids[Math.floor(r() * ids.length)]!;
          clock.advance(Math.floor(r() * 20));
          if (op < 0.45) {
            const key = r() < 0.5 ? `k${Math.floor(r() * 50)}` : undefined;
            try {
              held.push(lb.pick(key === undefined ? undefined : { key }));
            } catch (error) {
              expect(isNoEndpointAvailableError(error)).toBe(true);
            }
          } else if (op < 0.75 && held.length > 0) {
            const [h] = held.splice(Math.floor(r() * held.length), 1);
            const outcome = r();
            if (outcome < 0.15) h![Symbol.dispose]();
            else h!.done({ ok: outcome > 0.4, latencyMs: r() * 50, cancelled: outcome < 0.25 });
          } else if (op < 0.79) lb.remove(id);
          else if (op < 0.83) {
            if (!lb.has(id)) lb.add({ id, address: `http://127.0.0.1/${id}`, weight: 1 + Math.floor(r() * 3) });
          } else if (op < 0.86) drains.push(lb.drain(id));
          else if (op < 0.89) lb.undrain(id);
          else if (op < 0.92) lb.markDown(id);
          else if (op < 0.95) lb.markUp(id);
          else if (lb.has(id)) lb.setWeight(id, 1 + Math.floor(r() * 3));

          const stats = lb.stats();
          const open = new Map<string, number>();
          for (const h of held) open.set(h.endpoint.id, (open.get(h.endpoint.id) ?? 0) + 1);
          const ejected = stats.endpoints.filter((e) => e.state === 'ejected').length;
          if (
            stats.inFlight !== held.length ||
            stats.endpoints.some((e) => e.inFlight !== (open.get(e.id) ?? 0)) ||
            ejected > Math.max(1, Math.floor(stats.total / 2))
          ) {
            expect.fail(`seed ${seed}, step ${step}: ${JSON.stringify({ stats, open: [...open] })}`);
          }
        }
        for (const h of held.splice(0)) h.done({ ok: true });
        for (const id of ids) lb.undrain(id);
        await Promise.all(drains);
        expect(lb.stats().inFlight).toBe(0);
        lb.close();
      }
    },
  );
});
