import { describe, expect, it } from 'vitest';
import { idealMovement, loadBalance, movement } from './analysis.ts';
import { restorePartitioner } from './create.ts';
import { JumpPartitioner } from './jump.ts';
import type { Partitioner } from './partitioner.ts';
import { RendezvousPartitioner } from './rendezvous.ts';

const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}`);

/** A deliberately lopsided partitioner: every key on one node. */
const lopsided: Partitioner = {
  add() {},
  remove() {},
  has: () => true,
  owner: () => 'a',
  preferenceList: () => ['a'],
  nodes: () => [
    { id: 'a', weight: 1 },
    { id: 'b', weight: 1 },
  ],
  size: 2,
  toJSON: () => ({ version: 1, strategy: 'ring', nodes: [], options: {} }),
};

describe('loadBalance', () => {
  it('reads an empty key sample as perfect balance', () => {
    expect(loadBalance(lopsided, [])).toMatchObject({ keys: 0, peakToMean: 1, stdDev: 0, relativeStdDev: 0 });
  });

  it('counts keys per node and compares with the fair share', () => {
    const result = loadBalance(lopsided, ['x', 'y', 'z', 'w']);
    expect(result).toMatchObject({ keys: 4, counts: { a: 4, b: 0 }, mean: 2, max: 4, min: 0, peakToMean: 2, stdDev: 2, relativeStdDev: 1 });
  });

  it('measures against weighted shares', () => {
    const p = new RendezvousPartitioner({
      nodes: [
        { id: 'a', weight: 1 },
        { id: 'b', weight: 3 },
      ],
    });
    const result = loadBalance(p, keys);
    expect(result.counts.a! + result.counts.b!).toBe(keys.length);
    expect(result.peakToMean).toBeGreaterThanOrEqual(1);
    expect(result.peakToMean).toBeLessThan(1.05);
    expect(result.counts.b! / result.counts.a!).toBeGreaterThan(2.7);
  });
});

describe('bad input', () => {
  it('names the argument that is not a partitioner or not a list of keys', () => {
    const p = new JumpPartitioner({ nodes: ['a'] });
    expect(() => loadBalance(null as never, keys)).toThrow(/partitioner must be a Partitioner, got null/);
    expect(() => loadBalance(p, 'user:1' as never)).toThrow(/keys must be an iterable of keys/);
    expect(() => loadBalance(p, 42 as never)).toThrow(/keys must be an iterable of keys/);
    expect(() => movement(p, {} as never, keys)).toThrow(/after must be a Partitioner/);
    expect(() => movement(p, p, undefined as never)).toThrow(/keys must be an iterable of keys/);
    expect(loadBalance(p, new Set(['x', 'y'])).keys).toBe(2);
  });
});

describe('movement', () => {
  it('compares against the ideal 1/(n+1) on add', () => {
    const jump = new JumpPartitioner({ nodes: ['s0', 's1', 's2', 's3'] });
    const before = restorePartitioner(jump.toJSON());
    jump.add('s4');
    const result = movement(before, jump, keys);
    expect(result.idealFraction).toBeCloseTo(1 / 5);
    expect(result.fraction).toBeCloseTo(result.moved / keys.length);
    expect(result.ratio).toBeGreaterThan(0.9);
    expect(result.ratio).toBeLessThan(1.1);
  });

  it('is 1 when nothing had to move and nothing did, infinite when something moved needlessly', () => {
    expect(movement(lopsided, lopsided, keys).ratio).toBe(1);
    const p = new RendezvousPartitioner({ nodes: ['a', 'b'] });
    expect(movement(lopsided, p, keys).ratio).toBe(Number.POSITIVE_INFINITY);
  });

  it('computes the ideal from weighted shares', () => {
    expect(
      idealMovement(
        [{ id: 'a', weight: 1 }],
        [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
        ],
      ),
    ).toBeCloseTo(0.5);
    expect(
      idealMovement(
        [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
        ],
        [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 3 },
        ],
      ),
    ).toBeCloseTo(0.25);
    expect(
      idealMovement(
        [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
          { id: 'c', weight: 1 },
        ],
        [
          { id: 'a', weight: 1 },
          { id: 'b', weight: 1 },
        ],
      ),
    ).toBeCloseTo(1 / 3);
  });
});
