import { describe, expect, it } from 'vitest';
import { Sampler } from './strategies/sampler.ts';
import { seeded } from './testing/helpers.ts';
import type { EndpointState } from './types.ts';

const states = (weights: number[]) => weights.map((weight, i) => ({ id: String(i), weight }) as EndpointState);

describe('Sampler', () => {
  it('draws in proportion to weight', () => {
    const candidates = states([1, 2, 7]);
    const sampler = new Sampler();
    const random = seeded(21);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[sampler.one(candidates, random)]!++;
    expect(counts.map((c) => c / 30_000)).toEqual([expect.closeTo(0.1, 1), expect.closeTo(0.2, 1), expect.closeTo(0.7, 1)]);
  });

  it('draws the second index among the others, still in proportion to weight', () => {
    const candidates = states([1, 2, 7]);
    const sampler = new Sampler();
    const random = seeded(22);
    const counts = [0, 0, 0];
    for (let i = 0; i < 30_000; i++) counts[sampler.other(candidates, 2, random)]!++;
    expect(counts[2]).toBe(0);
    expect(counts[1]! / counts[0]!).toBeCloseTo(2, 0);
    for (let i = 0; i < 1_000; i++) expect(sampler.other(candidates, 0, random)).not.toBe(0);
  });

  it('draws uniformly when weights are equal, and follows weights given by a function', () => {
    const candidates = states([3, 3, 3, 3]);
    const sampler = new Sampler();
    expect(sampler.uniform(candidates)).toBe(true);
    const custom = new Sampler((e) => (e.id === '0' ? 0 : 1));
    const random = seeded(23);
    for (let i = 0; i < 1_000; i++) expect(custom.one(candidates, random)).not.toBe(0);
  });
});
