import { InvalidOptionError } from '@ballast/common';
import type { HashFunction } from './hash.ts';

/** Slots are packed below the point in a float64 sort key, so at most 2^21 nodes fit. */
const SLOT_BITS = 21;
const MAX_SLOTS = 2 ** SLOT_BITS;
/** Points one node may have (32 MiB of points, about a second to place): bounds `vnodes × weight`. */
export const MAX_POINTS_PER_NODE: number = 2 ** 22;

/**
 * The sorted circle of virtual-node points behind the ring and bounded-load strategies.
 *
 * Points live in two parallel typed arrays (`points`, `owners`), looked up through a
 * radix index on the top bits of the hash, so a lookup touches one or two entries and
 * allocates nothing. A node's points are `hash(id, 0..count-1)`: they depend only on its
 * id and weight, and equal points are ordered by node id, so the mapping depends only on
 * the set of nodes, never on insertion order. The first lookup after construction sorts
 * every point once; later changes merge or filter one node's points in O(points). Memory: 8 bytes a point.
 */
export class Continuum {
  /** Sorted point positions. */
  points: Uint32Array = new Uint32Array(0);
  /** Slot of the node owning each point. */
  owners: Uint32Array = new Uint32Array(0);
  /** Node id by slot (`undefined` for a free slot). */
  readonly ids: (string | undefined)[] = [];
  readonly #slotOf = new Map<string, number>();
  readonly #free: number[] = [];
  /** Points of nodes added before the first build; dropped once sorted in. */
  #pending: (Uint32Array | undefined)[] = [];
  readonly #vnodes: number;
  readonly #hash: HashFunction;
  #index: Uint32Array = new Uint32Array(2);
  #shift = 31;
  #seen: Uint32Array = new Uint32Array(0);
  #epoch = 0;
  /** True until the first lookup sorts everything, so bulk adds cost one sort. */
  #dirty = true;

  constructor(vnodes: number, hash: HashFunction) {
    this.#vnodes = vnodes;
    this.#hash = hash;
  }

  /** The number of points a node of `weight` gets. */
  pointCount(weight: number): number {
    return Math.max(1, Math.round(this.#vnodes * weight));
  }

  /** The slot of `id`, or -1. */
  slotOf(id: string): number {
    return this.#slotOf.get(id) ?? -1;
  }

  /** The number of slots in use or free (an upper bound for slot numbers). */
  get slotCount(): number {
    return this.ids.length;
  }

  /** Adds a node; returns its slot. */
  add(id: string, weight: number): number {
    const count = this.pointCount(weight);
    if (count > MAX_POINTS_PER_NODE) {
      throw new InvalidOptionError(
        'weight',
        `at most ${MAX_POINTS_PER_NODE / this.#vnodes} with vnodes ${this.#vnodes} (a node gets round(vnodes × weight) points, at most ${MAX_POINTS_PER_NODE}); weights are relative, so scale them down`,
        weight,
      );
    }
    const slot = this.#free.pop() ?? this.ids.length;
    if (slot >= MAX_SLOTS) throw new InvalidOptionError('node', `one of at most ${MAX_SLOTS} nodes`, id);
    const mine = new Uint32Array(count);
    for (let i = 0; i < count; i++) mine[i] = this.#hash(id, i) >>> 0;
    mine.sort();
    this.ids[slot] = id;
    this.#slotOf.set(id, slot);
    if (this.#dirty) this.#pending[slot] = mine;
    else this.#merge(slot, mine);
    return slot;
  }

  /** Removes a node; returns the slot it had. */
  remove(id: string): number {
    const slot = this.#slotOf.get(id)!;
    this.#slotOf.delete(id);
    this.ids[slot] = undefined;
    this.#pending[slot] = undefined;
    this.#free.push(slot);
    if (!this.#dirty) this.#filter(slot);
    return slot;
  }

  /** Index in `points` of the first point at or after `h` (wrapping to 0). Requires at least one node. */
  locate(h: number): number {
    if (this.#dirty) this.#build();
    const points = this.points;
    const b = h >>> this.#shift;
    let i = this.#index[b]!;
    const end = this.#index[b + 1]!;
    while (i < end && points[i]! < h) i++;
    return i === points.length ? 0 : i;
  }

  /**
   * The distinct owners met walking clockwise from point `start`, at most `n` of them
   * (every node when `n` is at least the node count).
   */
  distinct(start: number, n: number): string[] {
    const { points, owners, ids } = this;
    if (this.#seen.length < ids.length) this.#seen = new Uint32Array(ids.length * 2);
    const seen = this.#seen;
    const epoch = ++this.#epoch;
    const result: string[] = [];
    for (let k = 0; k < points.length && result.length < n; k++) {
      const at = start + k;
      const slot = owners[at < points.length ? at : at - points.length]!;
      if (seen[slot] === epoch) continue;
      seen[slot] = epoch;
      result.push(ids[slot]!);
    }
    return result;
  }

  /** Makes sure the sorted arrays are current (after bulk adds). */
  ensureBuilt(): void {
    if (this.#dirty) this.#build();
  }

  #build(): void {
    let total = 0;
    for (const mine of this.#pending) if (mine) total += mine.length;
    const keys = new Float64Array(total);
    let k = 0;
    for (let slot = 0; slot < this.#pending.length; slot++) {
      const mine = this.#pending[slot];
      if (!mine) continue;
      for (let i = 0; i < mine.length; i++) keys[k++] = mine[i]! * MAX_SLOTS + slot;
    }
    keys.sort();
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    for (let i = 0; i < total; i++) {
      const key = keys[i]!;
      const point = Math.floor(key / MAX_SLOTS);
      points[i] = point;
      owners[i] = key - point * MAX_SLOTS;
    }
    this.points = points;
    this.owners = owners;
    this.#orderTies();
    this.#pending = [];
    this.#dirty = false;
    this.#reindex();
  }

  /** Equal points are ordered by node id, so the winner never depends on slot numbers. */
  #orderTies(): void {
    const { points, owners, ids } = this;
    for (let i = 1; i < points.length; i++) {
      if (points[i] !== points[i - 1]) continue;
      let end = i + 1;
      while (end < points.length && points[end] === points[i]) end++;
      const run = Array.from(owners.subarray(i - 1, end)).sort((a, b) => compareIds(ids[a]!, ids[b]!));
      owners.set(run, i - 1);
      i = end - 1;
    }
  }

  #merge(slot: number, mine: Uint32Array): void {
    const { points, owners, ids } = this;
    const id = ids[slot]!;
    const total = points.length + mine.length;
    const nextPoints = new Uint32Array(total);
    const nextOwners = new Uint32Array(total);
    let i = 0;
    let j = 0;
    for (let k = 0; k < total; k++) {
      const takeMine =
        j < mine.length && (i >= points.length || mine[j]! < points[i]! || (mine[j] === points[i] && compareIds(id, ids[owners[i]!]!) < 0));
      if (takeMine) {
        nextPoints[k] = mine[j++]!;
        nextOwners[k] = slot;
      } else {
        nextPoints[k] = points[i]!;
        nextOwners[k] = owners[i++]!;
      }
    }
    this.points = nextPoints;
    this.owners = nextOwners;
    this.#reindex();
  }

  #filter(slot: number): void {
    const { points, owners } = this;
    let kept = 0;
    for (let i = 0; i < owners.length; i++) if (owners[i] !== slot) kept++;
    const nextPoints = new Uint32Array(kept);
    const nextOwners = new Uint32Array(kept);
    let k = 0;
    for (let i = 0; i < owners.length; i++) {
      if (owners[i] === slot) continue;
      nextPoints[k] = points[i]!;
      nextOwners[k++] = owners[i]!;
    }
    this.points = nextPoints;
    this.owners = nextOwners;
    this.#reindex();
  }

  /** Radix index over the top bits: about one point per bucket. */
  #reindex(): void {
    const n = this.points.length;
    const bits = Math.min(20, Math.max(1, Math.ceil(Math.log2(Math.max(2, n)))));
    const buckets = 2 ** bits;
    const shift = 32 - bits;
    const index = new Uint32Array(buckets + 1);
    let i = 0;
    for (let b = 0; b <= buckets; b++) {
      while (i < n && this.points[i]! >>> shift < b) i++;
      index[b] = i;
    }
    this.#index = index;
    this.#shift = shift;
  }
}

/** Code-unit order, the same in every process and locale. */
export function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
