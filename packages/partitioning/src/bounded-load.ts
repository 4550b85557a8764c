import { finiteNumber, InvalidOptionError, integer } from '@ballast/common';
import { Continuum } from './continuum.ts';
import { UnknownNodeError } from './errors.ts';
import type { HashFunction } from './hash.ts';
import { BasePartitioner, checkState, type PartitionerEvents, type PartitionerState } from './partitioner.ts';
import { DEFAULT_VNODES, type RingOptions } from './ring.ts';

/** Options of {@link BoundedLoadPartitioner}. */
export interface BoundedLoadOptions extends RingOptions {
  /**
   * Load bound factor: no node is given more than `ceil(c × m × weight / totalWeight)` of
   * the `m` assigned keys (`ceil(c × average)` with equal weights). Must be ≥ 1; lower
   * values balance better and move more keys away from their ring owner.
   * @default 1.25
   */
  c?: number;
}

/** Events of {@link BoundedLoadPartitioner}, in addition to `add` and `remove`. */
export interface BoundedLoadEvents {
  /** A key's ring owner was full, so `assign()` gave it to the next node with room. */
  overflow: { preferred: string; assigned: string };
}

/**
 * Consistent hashing with bounded loads (Mirrokni, Thorup & Zadimoghaddam, 2018), on top
 * of the ketama-style ring: a key goes to the first node clockwise whose load is under
 * `ceil(c × average load)` (weighted). Callers report work as it starts (`assign`) and
 * ends (`release`); with `c = 1.25` no node ever carries more than 25% above its share,
 * however skewed the keys are, while most keys still land on their ring owner.
 *
 * `owner()` answers where `assign()` would put a key right now, without counting it.
 *
 * The cap holds at each assignment. Removing a node drops its load from the count (its
 * keys are the caller's to reassign; `release()` of that node then throws
 * `UnknownNodeError`, and a node added again under the same id starts empty). Adding a
 * node or releasing keys lowers the cap, so a node may sit above it until enough of its keys
 * are released: it is given no new key meanwhile.
 *
 * @example
 * ```ts
 * const pool = new BoundedLoadPartitioner({ c: 1.25, nodes: ['w1', 'w2', 'w3'] });
 * const node = pool.assign('session:9'); // counted against node's load
 * // ... when the session ends:
 * pool.release(node);
 * ```
 */
export class BoundedLoadPartitioner extends BasePartitioner<PartitionerEvents & BoundedLoadEvents> {
  /** @inheritDoc */
  readonly strategy: 'bounded-load' = 'bounded-load';
  /** Load bound factor. */
  readonly c: number;
  /** Points per unit of weight on the underlying ring. */
  readonly vnodes: number;
  readonly #ring: Continuum;
  #load: Float64Array = new Float64Array(8);
  #weight: Float64Array = new Float64Array(8);
  #totalWeight = 0;
  #assigned = 0;
  #overflows = 0;

  /** @throws {InvalidOptionError} When an option is invalid. */
  constructor(options: BoundedLoadOptions = {}) {
    super(options);
    this.c = finiteNumber('c', options.c ?? 1.25, { min: 1 });
    this.vnodes = integer('vnodes', options.vnodes ?? DEFAULT_VNODES, { min: 1, max: 1_000_000 });
    this.#ring = new Continuum(this.vnodes, this.hash);
    this.addAll(options.nodes);
  }

  /** Restores a partitioner, loads included, from {@link BoundedLoadPartitioner.toJSON}. */
  static fromJSON(state: PartitionerState, options: { hash?: HashFunction } = {}): BoundedLoadPartitioner {
    const s = checkState(state, 'bounded-load');
    const p = new BoundedLoadPartitioner({ ...options, c: s.options.c as number, vnodes: s.options.vnodes as number, nodes: s.nodes });
    const loads = (s.extra?.loads ?? {}) as Record<string, number>;
    for (const [node, load] of Object.entries(loads)) {
      const slot = p.#ring.slotOf(node);
      if (slot < 0) throw new InvalidOptionError('state.extra.loads', 'loads of nodes listed in state.nodes', node);
      p.#load[slot] = integer(`state.extra.loads[${JSON.stringify(node)}]`, load, { min: 0 });
      p.#assigned += load;
    }
    return p;
  }

  /** {@inheritDoc Partitioner.owner} Where `assign(key)` would place the key now; does not count it. */
  owner(key: string | Uint8Array): string {
    if (this.weights.size === 0) this.empty();
    return this.#ring.ids[this.#pick(this.hash(key) >>> 0)]!;
  }

  /**
   * Places `key` on the first node clockwise with room under the cap and counts one unit of
   * load on it. Call {@link release} with the returned node when the work ends.
   * @throws {EmptyPartitionerError} When there is no node.
   */
  assign(key: string | Uint8Array): string {
    if (this.weights.size === 0) this.empty();
    const ring = this.#ring;
    const h = this.hash(key) >>> 0;
    const slot = this.#pick(h);
    this.#load[slot]!++;
    this.#assigned++;
    const preferred = ring.owners[ring.locate(h)]!;
    if (slot !== preferred) {
      this.#overflows++;
      if (this.events.has('overflow')) this.events.emit('overflow', { preferred: ring.ids[preferred]!, assigned: ring.ids[slot]! });
    }
    return ring.ids[slot]!;
  }

  /**
   * Gives back one unit of load on `node`.
   * @throws {UnknownNodeError} When the node is not present.
   * @throws {InvalidOptionError} When the node has no load to release.
   */
  release(node: string): void {
    const slot = this.#slot(node);
    if (this.#load[slot]! <= 0) throw new InvalidOptionError('node', 'a node with at least one assigned key', node);
    this.#load[slot]!--;
    this.#assigned--;
  }

  /** The current load of `node`. @throws {UnknownNodeError} When the node is not present. */
  load(node: string): number {
    return this.#load[this.#slot(node)]!;
  }

  /**
   * The most load `node` may carry for the next assignment: `ceil(c × (assigned + 1) × weight / totalWeight)`.
   * @throws {UnknownNodeError} When the node is not present.
   */
  capacity(node: string): number {
    return this.#cap(this.#slot(node), this.#assigned + 1);
  }

  /** Sets every load back to zero. */
  clearLoads(): void {
    this.#load.fill(0);
    this.#assigned = 0;
  }

  /**
   * {@inheritDoc Partitioner.preferenceList}
   * Ring order from the key, nodes with room under the cap first.
   */
  preferenceList(key: string | Uint8Array, n: number): string[] {
    this.checkCount(n);
    if (n === 0) return [];
    const ring = this.#ring;
    const all = ring.distinct(ring.locate(this.hash(key) >>> 0), this.size);
    const m = this.#assigned + 1;
    const room = all.filter((id) => this.#load[ring.slotOf(id)]! < this.#cap(ring.slotOf(id), m));
    const full = all.filter((id) => this.#load[ring.slotOf(id)]! >= this.#cap(ring.slotOf(id), m));
    return [...room, ...full].slice(0, n);
  }

  /** A snapshot of loads and decisions. */
  override stats(): { strategy: 'bounded-load'; nodes: number; assigned: number; overflows: number; loads: Record<string, number> } {
    const loads: Record<string, number> = {};
    for (const id of this.weights.keys()) loads[id] = this.#load[this.#ring.slotOf(id)]!;
    return { strategy: 'bounded-load', nodes: this.size, assigned: this.#assigned, overflows: this.#overflows, loads };
  }

  override toJSON(): PartitionerState {
    const loads: Record<string, number> = {};
    for (const id of this.weights.keys()) {
      const load = this.#load[this.#ring.slotOf(id)]!;
      if (load > 0) loads[id] = load;
    }
    return { ...super.toJSON(), extra: { loads } };
  }

  protected stateOptions(): Record<string, unknown> {
    return { c: this.c, vnodes: this.vnodes };
  }

  protected onAdd(node: string, weight: number): void {
    const slot = this.#ring.add(node, weight);
    if (slot >= this.#load.length) {
      const load = new Float64Array(slot * 2 + 8);
      load.set(this.#load);
      const weights = new Float64Array(slot * 2 + 8);
      weights.set(this.#weight);
      this.#load = load;
      this.#weight = weights;
    }
    this.#load[slot] = 0;
    this.#weight[slot] = weight;
    this.#totalWeight += weight;
  }

  protected onRemove(node: string): void {
    const slot = this.#ring.remove(node);
    this.#assigned -= this.#load[slot]!;
    this.#totalWeight -= this.#weight[slot]!;
    this.#load[slot] = 0;
    this.#weight[slot] = 0;
  }

  #slot(node: string): number {
    const slot = this.#ring.slotOf(node);
    if (slot < 0) throw new UnknownNodeError(node);
    return slot;
  }

  #cap(slot: number, m: number): number {
    return Math.ceil((this.c * m * this.#weight[slot]!) / this.#totalWeight);
  }

  /** The first slot clockwise from `h` whose load is under its cap for one more key. */
  #pick(h: number): number {
    const ring = this.#ring;
    let i = ring.locate(h);
    const points = ring.points.length;
    const owners = ring.owners;
    const load = this.#load;
    const m = this.#assigned + 1;
    for (let step = 0; step < points; step++) {
      const slot = owners[i]!;
      if (load[slot]! < this.#cap(slot, m)) return slot;
      if (++i === points) i = 0;
    }
    // Unreachable while c >= 1: the caps add up to more than the assigned load.
    return owners[ring.locate(h)]!;
  }
}
