import { createRequire } from 'node:module';
import { isInvalidOptionError } from '@ballast/common';
import { describe, expect, it } from 'vitest';
import { ConsistentHashAdapter } from './consistent-hash-adapter.ts';
import { createPartitioner, restorePartitioner } from './create.ts';
import { isPartitioningError } from './errors.ts';
import type { PartitionerState } from './partitioner.ts';
import { catchError } from './testing/catch-error.ts';

const require = createRequire(import.meta.url);
const ConsistentHash = require('consistent-hash') as new (
  options?: object,
) => {
  add(node: string, weight?: number, points?: number[]): unknown;
  remove(node: string): unknown;
  get(key: string, count?: number): string | string[] | null;
  getNodes(): string[];
  getPoints(node: string): number[];
};

const keys = Array.from({ length: 2000 }, (_, i) => `user:${i}`);

describe('ConsistentHashAdapter', () => {
  it('maps keys exactly like a consistent-hash ring with the same control points', () => {
    const legacy = new ConsistentHash();
    for (const node of ['a', 'b', 'c', 'd']) legacy.add(node);
    const state: PartitionerState = {
      version: 1,
      strategy: 'consistent-hash',
      options: { range: 100003, controlPoints: 40, distribution: 'random' },
      nodes: legacy.getNodes().map((id) => ({ id, weight: 1 })),
      extra: { points: Object.fromEntries(legacy.getNodes().map((id) => [id, legacy.getPoints(id)])) },
    };
    const adapter = ConsistentHashAdapter.fromJSON(state);
    for (const key of keys) expect(adapter.owner(key)).toBe(legacy.get(key));
    expect(adapter.preferenceList('user:1', 3)).toEqual(legacy.get('user:1', 3));
  });

  it('maps byte keys like the package maps the same Buffer, a byte-order mark and invalid UTF-8 included', () => {
    const adapter = new ConsistentHashAdapter({ nodes: ['a', 'b', 'c', 'd', 'e', 'f', 'g'] });
    const legacy = new ConsistentHash();
    for (const { id } of adapter.nodes()) legacy.add(id, 40, adapter.points(id));
    const samples = keys.map((key, i) => {
      const prefix = i % 3 === 0 ? [0xef, 0xbb, 0xbf] : i % 3 === 1 ? [0xc3, 0x28, 0xff] : [];
      return Buffer.concat([Buffer.from(prefix), Buffer.from(key)]);
    });
    for (const bytes of samples) {
      const plain = new Uint8Array(bytes);
      expect(adapter.owner(plain)).toBe(legacy.get(bytes as unknown as string));
      expect(adapter.preferenceList(plain, 2)).toEqual(legacy.get(bytes as unknown as string, 2));
    }
  });

  it("matches the package in 'uniform' mode for the same insertion order", () => {
    const legacy = new ConsistentHash({ distribution: 'uniform' });
    const adapter = new ConsistentHashAdapter({ distribution: 'uniform' });
    for (const node of ['a', 'b', 'c']) {
      legacy.add(node);
      adapter.add(node);
    }
    for (const key of keys) expect(adapter.owner(key)).toBe(legacy.get(key));
  });

  it('flaw: with the default random placement, two processes with the same nodes disagree', () => {
    const one = new ConsistentHashAdapter({ nodes: ['a', 'b', 'c', 'd'] });
    const two = new ConsistentHashAdapter({ nodes: ['a', 'b', 'c', 'd'] });
    const disagreements = keys.filter((k) => one.owner(k) !== two.owner(k)).length;
    expect(disagreements / keys.length).toBeGreaterThan(0.4);
    // The adapter's toJSON() carries the points, so a restart can keep the mapping.
    const restored = restorePartitioner(JSON.parse(JSON.stringify(one)));
    for (const key of keys) expect(restored.owner(key)).toBe(one.owner(key));
  });

  it("flaw: 'uniform' mode depends on insertion order and ignores weights", () => {
    const abc = new ConsistentHashAdapter({ distribution: 'uniform', nodes: ['a', 'b', 'c'] });
    const cba = new ConsistentHashAdapter({ distribution: 'uniform', nodes: ['c', 'b', 'a'] });
    expect(keys.filter((k) => abc.owner(k) !== cba.owner(k)).length).toBeGreaterThan(keys.length / 3);
    expect(() => abc.add('d', 2)).toThrow(/weight must be 1 with distribution 'uniform'/);
    const legacy = new ConsistentHash({ distribution: 'uniform' });
    legacy.add('heavy', 400);
    legacy.add('light', 40);
    const heavyShare = keys.filter((k) => legacy.get(k) === 'heavy').length / keys.length;
    expect(heavyShare).toBeLessThan(0.6); // 10:1 weights, yet about half each
  });

  it("flaw: in 'uniform' mode, nodes added after a lookup take the very points of earlier ones", () => {
    const adapter = new ConsistentHashAdapter({ distribution: 'uniform' });
    adapter.add('a');
    adapter.owner('k');
    adapter.add('b');
    expect(adapter.owner('k')).toBe('b');
    expect(adapter.points('b')).toEqual(adapter.points('a'));
    expect(keys.every((k) => adapter.owner(k) === 'b')).toBe(true); // 'a' owns nothing any more
    const legacy = new ConsistentHash({ distribution: 'uniform' });
    legacy.add('a');
    legacy.get('k');
    legacy.add('b');
    expect(legacy.get('k', 2)).toEqual(['b']); // the package lists one owner when asked for two
    // The adapter keeps the contract: n distinct owners, the package's first.
    expect(adapter.preferenceList('k', 2)).toEqual(['b', 'a']);
  });

  it('restores shared control points to the same owner after removals reorder the nodes', () => {
    const adapter = new ConsistentHashAdapter({ distribution: 'uniform' });
    for (const id of ['a', 'b', 'c']) {
      adapter.add(id);
      adapter.owner('k'); // each node takes the very points of the one before
    }
    adapter.remove('a'); // the package moves 'c' into 'a''s place: now 'b' owns the shared points
    expect(adapter.nodes().map((n) => n.id)).toEqual(['c', 'b']);
    const owner = adapter.owner('k');
    const copy = restorePartitioner(JSON.parse(JSON.stringify(adapter)));
    for (const key of keys) expect(copy.owner(key)).toBe(owner);
  });

  it('flaw worked around: add() right after remove() crashes the package, not the adapter', () => {
    const legacy = new ConsistentHash();
    legacy.add('a');
    legacy.add('b');
    legacy.get('k');
    legacy.remove('a');
    expect(() => legacy.add('c')).toThrow(TypeError);

    const adapter = new ConsistentHashAdapter({ nodes: ['a', 'b'] });
    adapter.owner('k');
    adapter.remove('a');
    adapter.add('c');
    expect(['b', 'c']).toContain(adapter.owner('k'));
  });

  it('turns weights into control points and rejects what the package silently accepts', () => {
    const adapter = createPartitioner({ strategy: 'consistent-hash', controlPoints: 10, nodes: [{ id: 'a', weight: 2.5 }, 'b'] });
    expect((adapter as ConsistentHashAdapter).points('a')).toHaveLength(25);
    expect((adapter as ConsistentHashAdapter).points('b')).toHaveLength(10);
    expect(
      isPartitioningError(
        catchError(() => adapter.add('a')),
        'ERR_BALLAST_DUPLICATE_NODE',
      ),
    ).toBe(true);
    expect(
      isPartitioningError(
        catchError(() => adapter.remove('zzz')),
        'ERR_BALLAST_UNKNOWN_NODE',
      ),
    ).toBe(true);
    expect(() => createPartitioner({ strategy: 'consistent-hash', hash: () => 1 } as never)).toThrow(
      /hash must be left out \(consistent-hash always uses its own PJW hash\), got a function/,
    );
    expect(() => new ConsistentHashAdapter({ distribution: 'even' as never })).toThrow(/distribution must be one of "random", "uniform"/);
    expect(() => new ConsistentHashAdapter({ orderNodes: 1 as never })).toThrow(/orderNodes must be a function/);
  });

  it('reports a full circle as an option error', () => {
    const tiny = new ConsistentHashAdapter({ range: 50, controlPoints: 20 });
    tiny.add('a');
    tiny.add('b');
    const error = catchError(() => {
      for (let i = 0; i < 10; i++) tiny.add(`n${i}`);
    });
    expect(isInvalidOptionError(error)).toBe(true);
    expect(error).toMatchObject({ option: 'range' });
    expect(catchError(() => new ConsistentHashAdapter({ nodes: [{ id: 'a', weight: 1e9 }] }))).toMatchObject({
      option: 'weight',
      message:
        'weight must be at most 2500.075: round(controlPoints × weight) points must fit on the circle of 100003 positions, got 1000000000',
    });
  });

  it('validates restored control points', () => {
    const state: PartitionerState = {
      version: 1,
      strategy: 'consistent-hash',
      options: { range: 100, controlPoints: 2, distribution: 'random' },
      nodes: [{ id: 'a', weight: 1 }],
      extra: { points: { a: [5, 500] } },
    };
    expect(() => ConsistentHashAdapter.fromJSON(state)).toThrow(
      /state.extra.points\["a"\] must be a non-empty array of integers between 0 and 99/,
    );
    // The package's own hash is part of the mapping: a hash given to restore it is refused, not ignored.
    const saved = new ConsistentHashAdapter({ nodes: ['a'] }).toJSON();
    expect(catchError(() => restorePartitioner(saved, { hash: () => 1 }))).toMatchObject({ option: 'hash' });
    // A node with no point would never own a key, and preference lists would come up short.
    expect(() => ConsistentHashAdapter.fromJSON({ ...state, extra: { points: { a: [] } } })).toThrow(
      /state.extra.points\["a"\] must be a non-empty/,
    );
    expect(() => ConsistentHashAdapter.fromJSON({ ...state, strategy: 'ring' })).toThrow(/state.strategy must be "consistent-hash"/);
  });
});
