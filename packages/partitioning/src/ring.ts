import { integer } from '@ballast/common';
import { Continuum } from './continuum.ts';
import type { HashFunction } from './hash.ts';
import { BasePartitioner, checkState, type PartitionerOptions, type PartitionerState } from './partitioner.ts';

/** Default virtual nodes per unit of weight: keeps peak/mean load under 1.15 at 100 nodes. */
export const DEFAULT_VNODES = 1024;

/** Options of {@link RingPartitioner}. */
export interface RingOptions extends PartitionerOptions {
  /**
   * Points on the circle per unit of weight (a node of weight `w` gets `round(vnodes × w)`,
   * at least 1). More points balance load better and cost memory (8 bytes per point) and
   * build time; lookups stay O(1) thanks to a radix index. A node may have at most 4,194,304
   * points, so with the default a weight is at most 4,096: give weights as ratios.
   * @default 1024
   */
  vnodes?: number;
}

/**
 * Karger consistent-hash ring with virtual nodes, ketama style: each node is hashed onto
 * the circle at `round(vnodes × weight)` points derived from its id alone, and a key
 * belongs to the first point at or after its hash. The mapping depends only on the set
 * of nodes and weights — never on insertion order or on the process — and adding or
 * removing a node only moves the keys it gains or loses.
 *
 * @example
 * ```ts
 * const ring = new RingPartitioner({ nodes: ['cache-a', 'cache-b', { id: 'cache-c', weight: 2 }] });
 * ring.owner('user:42'); // 'cache-c'
 * ring.preferenceList('user:42', 2); // ['cache-c', 'cache-a']
 * ```
 */
export class RingPartitioner extends BasePartitioner {
  /** @inheritDoc */
  readonly strategy: 'ring' = 'ring';
  /** Points per unit of weight. */
  readonly vnodes: number;
  readonly #ring: Continuum;

  /**
   * @throws {InvalidOptionError} When an option is invalid.
   */
  constructor(options: RingOptions = {}) {
    super(options);
    this.vnodes = integer('vnodes', options.vnodes ?? DEFAULT_VNODES, { min: 1, max: 1_000_000 });
    this.#ring = new Continuum(this.vnodes, this.hash);
    this.addAll(options.nodes);
  }

  /** Restores a partitioner from {@link RingPartitioner.toJSON}; pass the same `hash` if it was not the default. */
  static fromJSON(state: PartitionerState, options: { hash?: HashFunction } = {}): RingPartitioner {
    const s = checkState(state, 'ring');
    return new RingPartitioner({ ...options, vnodes: s.options.vnodes as number, nodes: s.nodes });
  }

  /** {@inheritDoc Partitioner.owner} */
  owner(key: string | Uint8Array): string {
    if (this.weights.size === 0) this.empty();
    const ring = this.#ring;
    // locate() may rebuild the arrays: read them after it.
    const i = ring.locate(this.hash(key) >>> 0);
    return ring.ids[ring.owners[i]!]!;
  }

  /** {@inheritDoc Partitioner.preferenceList} */
  preferenceList(key: string | Uint8Array, n: number): string[] {
    this.checkCount(n);
    if (n === 0) return [];
    return this.#ring.distinct(this.#ring.locate(this.hash(key) >>> 0), n);
  }

  /** A snapshot: node count and the number of points on the circle. */
  override stats(): { strategy: 'ring'; nodes: number; points: number } {
    this.#ring.ensureBuilt();
    return { strategy: 'ring', nodes: this.size, points: this.#ring.points.length };
  }

  protected stateOptions(): Record<string, unknown> {
    return { vnodes: this.vnodes };
  }

  protected onAdd(node: string, weight: number): void {
    this.#ring.add(node, weight);
  }

  protected onRemove(node: string): void {
    this.#ring.remove(node);
  }
}
