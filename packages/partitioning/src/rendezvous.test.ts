import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { type HashFunction, keyMix, murmur3, score } from './hash.ts';
import { RendezvousPartitioner } from './rendezvous.ts';

const NODE_SEED = 0x5bd1e995;

/**
 * The weighted formula itself, node by node with no shortcut: score `w / -ln(u)` with
 * u = (score(h, hash(id)) + 0.5) / 2^32, highest first, equal scores in id order.
 */
function reference(nodes: ReadonlyArray<{ id: string; weight: number }>, key: string | Uint8Array, hash: HashFunction = murmur3): string[] {
  const h = keyMix(hash(key, 0) >>> 0);
  return nodes
    .map(({ id, weight }) => ({ id, s: weight / -Math.log((score(h, hash(id, NODE_SEED) >>> 0) + 0.5) / 4294967296) }))
    .sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((x) => x.id);
}

/** Up to 70 nodes: below and above the count from which equal weights use WebAssembly SIMD. */
const ids = fc.uniqueArray(fc.string({ minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 70, size: 'max' });
const keys = fc.array(fc.oneof(fc.string({ maxLength: 12 }), fc.uint8Array({ maxLength: 12 })), { minLength: 1, maxLength: 20 });
/** Equal weights (the integer fast path) or mixed ones (the log with its bound). */
const weighting = fc.oneof(
  fc.constant(null),
  fc.double({ min: 0.01, max: 100, noNaN: true }),
  fc.array(fc.double({ min: 0.01, max: 100, noNaN: true }), { minLength: 70, maxLength: 70, size: 'max' }),
);
/** A hash with few distinct values, so that node hashes collide and scores tie. */
const narrow: HashFunction = (key, seed = 0) => (murmur3(key, seed) & 0x8000000f) >>> 0;

function weighted(list: string[], w: null | number | number[]): Array<{ id: string; weight: number }> {
  return list.map((id, i) => ({ id, weight: w === null ? 1 : typeof w === 'number' ? w : w[i]! }));
}

describe('RendezvousPartitioner lookups', () => {
  it.each([
    ['murmur3', murmur3],
    ['a colliding hash', narrow],
  ] as const)('owner and preference lists equal the weighted formula (%s)', (_, hash) => {
    fc.assert(
      fc.property(ids, weighting, keys, fc.nat(), (list, w, ks, cut) => {
        const nodes = weighted(list, w);
        const p = new RendezvousPartitioner({ hash, nodes });
        // Then remove some and re-add them, so the arrays are reordered and patched.
        const removed = nodes.slice(0, cut % nodes.length);
        for (const n of removed) p.remove(n.id);
        for (const n of removed) p.add(n.id, n.weight);
        for (const key of ks) {
          const expected = reference(nodes, key, hash);
          expect(p.owner(key)).toBe(expected[0]);
          expect(p.preferenceList(key, nodes.length)).toEqual(expected);
          expect(p.preferenceList(key, 1)).toEqual([expected[0]]);
        }
      }),
      { numRuns: 300 },
    );
  });

  /** Owners and the first preference-list entries of 300 string and byte keys, against the formula. */
  function expectFormula(p: RendezvousPartitioner, nodes: Array<{ id: string; weight: number }>): void {
    for (let k = 0; k < 300; k++) {
      const key = k % 2 ? `user:${k}` : new TextEncoder().encode(`user:${k}`);
      const expected = reference(nodes, key);
      expect(p.owner(key)).toBe(expected[0]);
      expect(p.preferenceList(key, 3)).toEqual(expected.slice(0, 3));
    }
  }

  it('keeps the formula at a thousand nodes, equal and mixed weights, across changes', () => {
    const list = Array.from({ length: 1000 }, (_, i) => `node-${i}`);
    for (const w of [null, list.map((_, i) => 1 + (i % 7))]) {
      const nodes = weighted(list, w);
      const p = new RendezvousPartitioner({ nodes });
      expectFormula(p, nodes);
      // Lookups after a change see it (the SIMD copy of the nodes is refreshed).
      for (const id of ['node-0', 'node-500', 'node-999']) p.remove(id);
      p.add('node-new', nodes[1]!.weight);
      const after = [
        ...nodes.filter((n) => !['node-0', 'node-500', 'node-999'].includes(n.id)),
        { id: 'node-new', weight: nodes[1]!.weight },
      ];
      expectFormula(p, after);
    }
  });

  describe('without WebAssembly', () => {
    afterEach(() => {
      vi.unstubAllGlobals();
      vi.resetModules();
    });

    it('gives the same owners from its JavaScript loop', async () => {
      vi.stubGlobal('WebAssembly', undefined);
      vi.resetModules();
      const { RendezvousPartitioner: Plain } = await import('./rendezvous.ts');
      const nodes = weighted(
        Array.from({ length: 1000 }, (_, i) => `node-${i}`),
        null,
      );
      expectFormula(new Plain({ nodes }), nodes);
    });
  });

  it('goes back to the integer path once weights are equal again', () => {
    const p = new RendezvousPartitioner({ nodes: ['a', 'b', { id: 'c', weight: 3 }] });
    p.remove('c');
    p.add('c');
    const nodes = weighted(['a', 'b', 'c'], null);
    for (let k = 0; k < 200; k++) expect(p.owner(`k${k}`)).toBe(reference(nodes, `k${k}`)[0]);
  });
});
