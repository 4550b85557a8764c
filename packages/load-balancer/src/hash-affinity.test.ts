import { describe, expect, it } from 'vitest';
import { hashAffinity, LoadBalancer, type PickHandle } from './index.ts';
import { endpoints, manualClock, seeded, tally } from './testing/helpers.ts';

const keys = Array.from({ length: 2_000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);

function owners(lb: LoadBalancer): Map<string, string> {
  const map = new Map<string, string>();
  for (const key of keys) {
    const h = lb.pick({ key });
    map.set(key, h.endpoint.id);
    h.done({ ok: true });
  }
  return map;
}

describe.each(['ring', 'maglev', 'bounded-load'] as const)('hashAffinity(%s)', (partitioner) => {
  it('sends a key to the same endpoint every time, and spreads keys', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(4), strategy: hashAffinity({ partitioner }), random: seeded() });
    const first = owners(lb);
    expect(owners(lb)).toEqual(first);
    const counts = tally([...first.values()]);
    for (const id of 'abcd') expect(counts[id]! / keys.length).toBeGreaterThan(0.15);
    expect(lb.strategy).toBe(`hash-${partitioner}`);
  });

  it('moves only the keys of an unavailable endpoint, and moves them back', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(5), strategy: hashAffinity({ partitioner }), random: seeded() });
    const before = owners(lb);
    lb.markDown('c');
    const during = owners(lb);
    for (const key of keys) {
      if (before.get(key) === 'c') expect(during.get(key)).not.toBe('c');
      else expect(during.get(key)).toBe(before.get(key));
    }
    lb.markUp('c');
    expect(owners(lb)).toEqual(before);
  });

  it('sends requests without a key at random', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(3), strategy: hashAffinity({ partitioner }), random: seeded(3) });
    const ids = Array.from({ length: 3_000 }, () => {
      const h = lb.pick();
      h.done({ ok: true });
      return h.endpoint.id;
    });
    for (const id of 'abc') expect(tally(ids)[id]! / 3_000).toBeCloseTo(1 / 3, 1);
  });
});

describe('hashAffinity with slow start', () => {
  it.each(['ring', 'bounded-load'] as const)('%s: moves a returning endpoint’s keys back gradually, each key once', (partitioner) => {
    const clock = manualClock();
    const lb = new LoadBalancer({
      endpoints: endpoints(4),
      strategy: hashAffinity({ partitioner }),
      clock,
      slowStart: { windowMs: 10_000, minWeightPercent: 10 },
    });
    const before = owners(lb);
    const ofB = keys.filter((k) => before.get(k) === 'b');
    lb.markDown('b');
    lb.markUp('b');
    clock.advance(3_000); // 30% of the ramp
    const during = owners(lb);
    const back = ofB.filter((k) => during.get(k) === 'b').length / ofB.length;
    expect(back).toBeGreaterThan(0.2);
    expect(back).toBeLessThan(0.4);
    for (const key of keys) if (before.get(key) !== 'b') expect(during.get(key)).toBe(before.get(key));
    clock.advance(3_000);
    const later = owners(lb);
    for (const key of ofB) if (during.get(key) === 'b') expect(later.get(key)).toBe('b');
    clock.advance(4_000);
    expect(owners(lb)).toEqual(before);
    expect(lb.stats().inFlight).toBe(0);
  });
});

describe('hashAffinity(bounded-load)', () => {
  it('spills a hot key once its endpoint holds more than c × its share in flight', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(4), strategy: hashAffinity({ partitioner: 'bounded-load', c: 1.25 }) });
    const held: PickHandle[] = [];
    for (let i = 0; i < 40; i++) held.push(lb.pick({ key: 'hot' }));
    const inFlight = lb.stats().endpoints.map((e) => e.inFlight);
    expect(Math.max(...inFlight)).toBeLessThanOrEqual(Math.ceil((1.25 * 40) / 4));
    const home = held[0]!.endpoint.id;
    for (const h of held) h.done({ ok: true });
    // Loads were released: the hot key is back home, alone.
    const again = lb.pick({ key: 'hot' });
    expect(again.endpoint.id).toBe(home);
    again.done({ ok: true });
  });

  it.each([
    [
      'removed and added back',
      (lb: LoadBalancer, id: string) => {
        lb.remove(id);
        lb.add({ id, address: 'http://127.0.0.1:9000' });
      },
    ],
    [
      're-weighted',
      (lb: LoadBalancer, id: string) => {
        lb.setWeight(id, 1.0001);
      },
    ],
  ] as const)('keeps the load bound for an endpoint %s while requests are in flight', (_what, change) => {
    const lb = new LoadBalancer({ endpoints: endpoints(4), strategy: hashAffinity({ partitioner: 'bounded-load', c: 1.25 }) });
    const hold = (n: number): PickHandle[] => Array.from({ length: n }, () => lb.pick({ key: 'hot' }));
    const before = hold(20);
    change(lb, before[0]!.endpoint.id);
    const during = hold(20);
    // The requests from before the change finish: they must not release what came after.
    for (const h of before) h.done({ ok: true });
    const after = hold(20);
    const inFlight = lb.stats().endpoints.map((e) => e.inFlight);
    expect(inFlight.reduce((a, b) => a + b)).toBe(40);
    expect(Math.max(...inFlight)).toBeLessThanOrEqual(Math.ceil((1.25 * 40) / 4));
    for (const h of [...during, ...after]) h.done({ ok: true });
    expect(lb.stats().inFlight).toBe(0);
  });

  it('re-places an endpoint whose weight changed', () => {
    const lb = new LoadBalancer({ endpoints: endpoints(2), strategy: hashAffinity({ partitioner: 'maglev' }) });
    lb.setWeight('b', 9);
    const counts = tally([...owners(lb).values()]);
    expect(counts.b! / keys.length).toBeGreaterThan(0.8);
  });
});

it('validates the partitioner name', () => {
  expect(() => hashAffinity({ partitioner: 'jump' as never })).toThrow(
    'partitioner must be one of "ring", "maglev", "bounded-load", got "jump"',
  );
});
