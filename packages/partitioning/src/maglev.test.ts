import { spawnSync } from 'node:child_process';
import { isInvalidOptionError } from '@ballast/common';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { isPartitioningError } from './errors.ts';
import { type HashFunction, murmur3 } from './hash.ts';
import { type MaglevOptions, MaglevPartitioner, type MaglevRebuiltEvent } from './maglev.ts';
import { MaglevTableFill, OFFSET_SEED, SKIP_SEED } from './maglev-table.ts';
import type { NodeInput } from './partitioner.ts';
import { catchError } from './testing/catch-error.ts';

const SIZE = 4099;

/**
 * Murmur3, except that key `#s` hashes to the start of table entry `s`: looking up `#0` …
 * `#${SIZE - 1}` reads the whole table, entry by entry.
 */
const slotHash: HashFunction = (key, seed = 0) =>
  seed === 0 && typeof key === 'string' && key.startsWith('#') ? Math.ceil((Number(key.slice(1)) * 2 ** 32) / SIZE) : murmur3(key, seed);

function make(nodes: readonly NodeInput[], options: MaglevOptions = {}): MaglevPartitioner {
  return new MaglevPartitioner({ hash: slotHash, tableSize: SIZE, rebuildChunk: 500, nodes, ...options });
}

/** The owner of every table entry. */
function table(p: MaglevPartitioner): string[] {
  return Array.from({ length: SIZE }, (_, s) => p.owner(`#${s}`));
}

/** What a fresh synchronous build for the same nodes gives. */
function syncTable(p: MaglevPartitioner): string[] {
  return table(make(p.nodes()));
}

const ids = (n: number, prefix = 'n'): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('MaglevTableFill', () => {
  it('fills the same table in chunks of any size as in one go', () => {
    const nodes = fc.uniqueArray(
      fc.record({ id: fc.stringMatching(/^[a-z0-9]{1,8}$/), weight: fc.double({ min: 0.05, max: 20, noNaN: true }) }),
      { minLength: 1, maxLength: 12, selector: (n) => n.id },
    );
    fc.assert(
      fc.property(nodes, fc.integer({ min: 1, max: 400 }), (list, budget) => {
        const order = list.map((n) => n.id).sort();
        const weightOf = (id: string): number => list.find((n) => n.id === id)!.weight;
        const whole = new MaglevTableFill(order, weightOf, murmur3, 1031);
        whole.fill(Number.POSITIVE_INFINITY);
        const chunked = new MaglevTableFill(order, weightOf, murmur3, 1031);
        let chunks = 0;
        while (!chunked.done) {
          expect(chunked.fill(budget)).toBeGreaterThan(0);
          chunks++;
        }
        expect(chunked.table).toEqual(whole.table);
        expect(chunks).toBeGreaterThanOrEqual(Math.ceil(1031 / budget));
      }),
      { numRuns: 60 },
    );
  });
});

/** A hash under which key `#s` falls on table entry `s` of a `size`-entry table; `ids` fixes nodes' offset and skip. */
function entryHash(size: number, ids: Record<string, { offset: number; skip: number }> = {}): HashFunction {
  return (key, seed = 0) => {
    if (seed === 0 && typeof key === 'string' && key.startsWith('#')) return Math.ceil((Number(key.slice(1)) * 2 ** 32) / size);
    const fixed = typeof key === 'string' ? ids[key] : undefined;
    if (fixed === undefined) return murmur3(key, seed);
    // offset = h1 mod M and skip = h2 mod (M − 1) + 1, as in the paper.
    return seed === OFFSET_SEED ? fixed.offset : seed === SKIP_SEED ? fixed.skip - 1 : murmur3(key, seed);
  };
}

/** The owner of each of the `size` table entries. */
function entries(p: MaglevPartitioner, size: number): string[] {
  return Array.from({ length: size }, (_, s) => p.owner(`#${s}`));
}

/** Table entries whose owner differs, as a multiple of the least any scheme must change (`ideal`, a fraction). */
function changedOverIdeal(before: string[], after: string[], ideal: number): number {
  return before.filter((owner, s) => owner !== after[s]).length / before.length / ideal;
}

/**
 * Maglev hashing as Eisenbud et al. publish it (NSDI 2016, §3.4 and §5.3): each node fills
 * the table in the order of its permutation `(offset + j × skip) mod M`, nodes taking turns.
 * The paper bounds the balance exactly and measures movement ("minimal disruption" is a goal,
 * not a guarantee): the tests check its worked example, its balance, the ordering of its
 * Figure 12, and a bound on one join or leave at the table sizes it recommends (M ≫ N).
 */
describe('Maglev hashing as published (Eisenbud et al., NSDI 2016)', () => {
  it('builds Table 1 of the paper, and removing B1 changes B1’s entries and only one other (row 6)', () => {
    // Table 1: three backends, a 7-entry table, and each backend's offset and skip.
    const paper = { B0: { offset: 3, skip: 4 }, B1: { offset: 0, skip: 2 }, B2: { offset: 3, skip: 1 } };
    const p = new MaglevPartitioner({ hash: entryHash(7, paper), tableSize: 7, nodes: ['B0', 'B1', 'B2'] });
    const before = entries(p, 7);
    expect(before).toEqual(['B1', 'B0', 'B1', 'B0', 'B2', 'B2', 'B0']);
    p.remove('B1');
    const after = entries(p, 7);
    expect(after).toEqual(['B0', 'B0', 'B0', 'B0', 'B2', 'B2', 'B2']);
    expect([0, 1, 2, 3, 4, 5, 6].filter((row) => before[row] !== after[row])).toEqual([0, 2, 6]);
  });

  it('gives every node ⌊M/N⌋ or ⌈M/N⌉ entries: with M > 100 × N, shares differ by under 1% (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.stringMatching(/^[a-z0-9:.-]{1,10}$/), { minLength: 1, maxLength: 40 }), (nodes) => {
        const p = new MaglevPartitioner({ hash: entryHash(SIZE), tableSize: SIZE, nodes });
        const counts = new Map<string, number>();
        for (const owner of entries(p, SIZE)) counts.set(owner, (counts.get(owner) ?? 0) + 1);
        expect(counts.size).toBe(nodes.length);
        for (const count of counts.values()) expect([Math.floor(SIZE / nodes.length), Math.ceil(SIZE / nodes.length)]).toContain(count);
        p.close();
      }),
      { numRuns: 30 },
    );
  });

  it('moves at most 1.6 × the ideal share of entries when one node joins or leaves, at M ≥ 1,000 × N (property)', () => {
    const size = 65_537; // at least 1,000 entries per node for up to 65 nodes
    fc.assert(
      fc.property(fc.integer({ min: 10, max: 65 }), fc.string({ minLength: 1, maxLength: 6 }), (n, prefix) => {
        const nodes = ids(n, `${prefix}-`);
        const p = new MaglevPartitioner({ hash: entryHash(size), tableSize: size, nodes });
        const before = entries(p, size);
        p.add('joining');
        const joined = entries(p, size);
        const taken = joined.filter((owner) => owner === 'joining').length;
        expect([Math.floor(size / (n + 1)), Math.ceil(size / (n + 1))]).toContain(taken);
        expect(changedOverIdeal(before, joined, 1 / (n + 1))).toBeLessThanOrEqual(1.6);
        p.remove('joining');
        expect(entries(p, size)).toEqual(before);
        p.remove(nodes[0]!);
        const left = entries(p, size);
        expect(left.filter((owner, s) => before[s] === nodes[0] && owner === nodes[0])).toEqual([]);
        expect(changedOverIdeal(before, left, 1 / n)).toBeLessThanOrEqual(1.6);
      }),
      { numRuns: 6 },
    );
  });

  it('changes fewer entries with the larger of the paper’s two tables when 1% of 1,000 nodes leave (its Figure 12)', () => {
    const nodes = ids(1000);
    const changedShare = (size: number): number => {
      const p = new MaglevPartitioner({ hash: entryHash(size), tableSize: size, nodes });
      const before = entries(p, size);
      for (const node of nodes.slice(0, 10)) p.remove(node);
      return changedOverIdeal(before, entries(p, size), 10 / 1000);
    };
    const small = changedShare(65_537);
    const large = changedShare(655_373);
    expect(large).toBeGreaterThanOrEqual(1);
    expect(large).toBeLessThan(small);
  });
});

describe('MaglevPartitioner, background rebuild', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('never returns a removed node while rebuilding, and ends with the synchronous table', () => {
    const p = make(ids(12), { rebuild: 'background' });
    const before = table(p);
    p.remove('n3');
    p.remove('n7');
    p.add('x1');
    let turns = 0;
    while (p.stats().stale) {
      const during = table(p);
      expect(during.filter((id) => id === 'n3' || id === 'n7')).toEqual([]);
      // Only the removed nodes' entries change hands until the swap; the new node waits.
      expect(during.filter((id, s) => id !== before[s] && before[s] !== 'n3' && before[s] !== 'n7')).toEqual([]);
      const list = p.preferenceList('#0', p.size);
      expect(new Set(list).size).toBe(p.size);
      expect(list).not.toContain('n3');
      expect(list.slice(0, 1)).toEqual([during[0]]);
      vi.advanceTimersToNextTimer();
      turns++;
    }
    expect(turns).toBeGreaterThan(3);
    expect(table(p)).toEqual(syncTable(p));
    expect(p.stats()).toMatchObject({ stale: false, rebuilding: false, rebuilds: 2 });
    expect(p.stats().fallbacks).toBeGreaterThan(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stays correct under any sequence of changes and event-loop turns', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('toggle' as const), id: fc.integer({ min: 0, max: 9 }), weight: fc.constantFrom(1, 2) }),
      fc.record({ kind: fc.constant('turns' as const), count: fc.integer({ min: 1, max: 12 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 30 }), (ops) => {
        const p = make(ids(4), { rebuild: 'background' });
        p.owner('warm-up');
        for (const o of ops) {
          if (o.kind === 'turns') for (let t = 0; t < o.count; t++) vi.advanceTimersToNextTimer();
          else if (p.has(`n${o.id}`)) {
            if (p.size > 1) p.remove(`n${o.id}`);
          } else p.add(`n${o.id}`, o.weight);
          const owners = Array.from({ length: 64 }, (_, i) => p.owner(`#${i * 61}`));
          expect(owners.filter((id) => !p.has(id))).toEqual([]);
          expect(p.preferenceList('#7', p.size).sort()).toEqual(
            p
              .nodes()
              .map((n) => n.id)
              .sort(),
          );
        }
        vi.runAllTimers();
        expect(p.stats().stale).toBe(false);
        expect(table(p)).toEqual(syncTable(p));
      }),
      { numRuns: 40 },
    );
  });

  it('sends a removed node’s keys to the next present table entry', () => {
    const p = make(ids(5), { rebuild: 'background' });
    const before = table(p);
    p.remove('n2');
    const during = table(p);
    for (let s = 0; s < SIZE; s++) {
      if (before[s] !== 'n2') continue;
      let next = s + 1;
      while (before[next % SIZE] === 'n2') next++;
      expect(during[s]).toBe(before[next % SIZE]);
    }
  });

  it('coalesces many changes in a row into one rebuild', () => {
    const p = make(ids(8), { rebuild: 'background' });
    p.owner('warm-up');
    const rebuilt: MaglevRebuiltEvent[] = [];
    p.on('rebuilt', (e) => rebuilt.push(e));
    for (let i = 0; i < 20; i++) p.add(`extra${i}`);
    for (let i = 0; i < 5; i++) p.remove(`n${i}`);
    expect(vi.getTimerCount()).toBe(1);
    vi.runAllTimers();
    expect(rebuilt).toHaveLength(1);
    expect(rebuilt[0]).toMatchObject({ mode: 'background', nodes: 23, tableSize: SIZE });
    expect(rebuilt[0]!.chunks).toBeGreaterThan(1);
    expect(p.stats().rebuilds).toBe(2);
    expect(table(p)).toEqual(syncTable(p));
  });

  it('reports rebuild times from its clock', () => {
    let now = 0;
    const p = make(ids(8), { rebuild: 'background', clock: { now: () => now++ } });
    vi.runAllTimers();
    // Each chunk reads the clock twice: one tick inside the chunk, one between chunks.
    const { chunks, busyMs, maxChunkMs, durationMs } = p.stats().lastRebuild!;
    expect(chunks).toBeGreaterThan(1);
    expect({ busyMs, maxChunkMs, durationMs }).toEqual({ busyMs: chunks, maxChunkMs: 1, durationMs: 2 * chunks - 1 });
  });

  it('finishes a rebuild when nodes change in the middle of it, then rebuilds for the changes', () => {
    const p = make(ids(8), { rebuild: 'background' });
    p.owner('warm-up');
    const rebuilt: number[] = [];
    p.on('rebuilt', (e) => rebuilt.push(e.nodes));
    p.remove('n0');
    vi.advanceTimersToNextTimer();
    vi.advanceTimersToNextTimer();
    expect(p.stats().rebuilding).toBe(true);
    p.remove('n1');
    p.add('n9');
    while (rebuilt.length === 0) vi.advanceTimersToNextTimer();
    // The table for the nodes without n0 is in place; n1 has left it since, n9 is still to come.
    expect(rebuilt).toEqual([7]);
    expect(p.stats()).toMatchObject({ stale: true, rebuilding: true });
    const between = table(p);
    expect(between).not.toContain('n1');
    expect(between).not.toContain('n9');
    vi.runAllTimers();
    expect(rebuilt).toEqual([7, 7]);
    expect(p.stats()).toMatchObject({ rebuilds: 3, stale: false });
    expect(table(p)).toEqual(syncTable(p));
  });

  it('needs no rebuild when changes cancel out, and keeps a re-added node’s entries', () => {
    const p = make(ids(6), { rebuild: 'background' });
    const before = table(p);
    p.add('temp');
    p.remove('temp');
    expect(p.stats().stale).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    p.remove('n4');
    expect(table(p)).not.toContain('n4');
    p.add('n4');
    expect(table(p)).toEqual(before);
    expect(p.stats().stale).toBe(false);
    // Back with another weight: its old entries serve until the rebuild gives it its new share.
    p.remove('n4');
    p.add('n4', 3);
    expect(table(p)).toEqual(before);
    expect(p.stats().stale).toBe(true);
    vi.runAllTimers();
    expect(table(p)).toEqual(syncTable(p));
    expect(table(p).filter((id) => id === 'n4').length).toBeGreaterThan((2.5 * SIZE) / 8);
  });

  it('builds synchronously when the previous table has no present node, and throws when empty', () => {
    const p = make(['a', 'b'], { rebuild: 'background' });
    p.owner('warm-up');
    p.remove('a');
    p.remove('b');
    expect(
      isPartitioningError(
        catchError(() => p.owner('k')),
        'ERR_BALLAST_EMPTY_PARTITIONER',
      ),
    ).toBe(true);
    p.add('c');
    p.add('d');
    expect(['c', 'd']).toContain(p.owner('k'));
    expect(p.stats()).toMatchObject({ stale: false, rebuilding: false, rebuilds: 2 });
    expect(vi.getTimerCount()).toBe(0);
    expect(table(p)).toEqual(syncTable(p));
  });

  it('whenRebuilt() resolves once the new table is in place', async () => {
    const p = make(ids(4), { rebuild: 'background' });
    // The initial nodes are built in the background too, unless a lookup comes first.
    const initial = p.whenRebuilt();
    await vi.runAllTimersAsync();
    expect(await initial).toBe(true);
    expect(p.stats()).toMatchObject({ rebuilds: 1, lastRebuild: { mode: 'background' } });
    p.add('n4');
    const waited = p.whenRebuilt();
    expect(table(p)).not.toContain('n4');
    await vi.runAllTimersAsync();
    expect(await waited).toBe(true);
    expect(table(p)).toContain('n4');
    expect(p.stats().lastRebuild).toMatchObject({ mode: 'background', nodes: 5 });
  });

  it('close() cancels a pending rebuild, leaves no timer, and lookups stay exact', async () => {
    const p = make(ids(6), { rebuild: 'background' });
    p.owner('warm-up');
    p.remove('n1');
    p.add('n6');
    vi.advanceTimersToNextTimer();
    const waited = p.whenRebuilt();
    expect(vi.getTimerCount()).toBe(1);
    p.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(await waited).toBe(false);
    expect(p.stats()).toMatchObject({ rebuilding: false, stale: true, rebuilds: 1 });
    // Closed: the next lookup rebuilds in its own call, as in 'sync' mode.
    expect(table(p)).toEqual(syncTable(p));
    p.remove('n2');
    expect(vi.getTimerCount()).toBe(0);
    expect(table(p)).not.toContain('n2');
    expect(p.stats()).toMatchObject({ stale: false, rebuilds: 3 });
    expect(await p.whenRebuilt()).toBe(true);
  });
});

describe('MaglevPartitioner, sync rebuild', () => {
  it('rebuilds inside the first lookup after a batch of changes, with no timer', () => {
    vi.useFakeTimers();
    try {
      const p = make(ids(6));
      const events: MaglevRebuiltEvent[] = [];
      p.on('rebuilt', (e) => events.push(e));
      p.owner('k');
      p.add('n6');
      p.remove('n0');
      expect(vi.getTimerCount()).toBe(0);
      expect(table(p)).toEqual(syncTable(p));
      expect(events.map((e) => [e.mode, e.nodes, e.chunks])).toEqual([
        ['sync', 6, 1],
        ['sync', 6, 1],
      ]);
      expect(p.stats()).toMatchObject({ rebuild: 'sync', rebuilds: 2, fallbacks: 0 });
    } finally {
      vi.useRealTimers();
    }
  });

  it('whenRebuilt() builds now', async () => {
    const p = make(ids(3));
    p.add('n3');
    expect(p.stats().stale).toBe(true);
    expect(await p.whenRebuilt()).toBe(true);
    expect(p.stats()).toMatchObject({ stale: false, rebuilds: 1 });
  });

  it('background and sync give the same owners for the default table and hash', async () => {
    const nodes = ['cache-a', { id: 'cache-b', weight: 2 }, 'cache-c', 'cache-d'];
    const sync = new MaglevPartitioner({ nodes });
    const background = new MaglevPartitioner({ nodes: ['cache-z'], rebuild: 'background' });
    background.owner('warm-up');
    for (const n of nodes) typeof n === 'string' ? background.add(n) : background.add(n.id, n.weight);
    background.remove('cache-z');
    expect(await background.whenRebuilt()).toBe(true);
    for (let i = 0; i < 2000; i++) expect(background.owner(`user:${i}`)).toBe(sync.owner(`user:${i}`));
    background.close();
  });
});

describe('MaglevPartitioner options', () => {
  it.each([
    [{ rebuild: 'later' }, 'rebuild must be one of "sync", "background", got "later"'],
    [{ rebuildChunk: 0 }, 'rebuildChunk must be an integer >= 1, got 0'],
    [{ clock: {} }, 'clock must be a Clock'],
  ])('rejects %j', (options, message) => {
    const error = catchError(() => new MaglevPartitioner(options as MaglevOptions));
    expect(isInvalidOptionError(error)).toBe(true);
    expect((error as Error).message).toContain(message);
  });

  it('restores with the rebuild mode given again', () => {
    const p = new MaglevPartitioner({ nodes: ['a', 'b'], tableSize: SIZE, rebuild: 'background' });
    const copy = MaglevPartitioner.fromJSON(JSON.parse(JSON.stringify(p)), { rebuild: 'background' });
    expect(copy.rebuild).toBe('background');
    expect(copy.tableSize).toBe(SIZE);
    expect(copy.owner('k')).toBe(p.owner('k'));
  });
});

describe('process exit', () => {
  const run = (script: string): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, ['--conditions=@ballast/source', '--input-type=module', '-e', script], {
      cwd: import.meta.dirname,
      encoding: 'utf8',
      timeout: 20_000,
    });

  it('a pending background rebuild does not keep the process alive; awaiting one does', () => {
    const child = run(`
      import { MaglevPartitioner } from '@ballast/partitioning';
      const p = new MaglevPartitioner({ nodes: ['a', 'b', 'c'], rebuild: 'background', tableSize: 1_000_003, rebuildChunk: 1000 });
      p.owner('k');
      p.remove('a');
      console.log(await p.whenRebuilt(), p.stats().stale);
      p.add('a');
      process.on('exit', () => console.log('exit', p.stats().rebuilding));
    `);
    expect(child.stderr).toBe('');
    expect(child.stdout).toBe('true false\nexit true\n');
    expect(child.status).toBe(0);
  });
});
