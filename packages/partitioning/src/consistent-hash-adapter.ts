import { InvalidOptionError, integer, oneOf } from '@ballast/common';
// @ts-expect-error consistent-hash ships no types; the part used is typed below.
import ConsistentHashModule from 'consistent-hash';
import type { NodeEntry, NodeInput, PartitionerState } from './partitioner.ts';
import { BasePartitioner, checkState } from './partitioner.ts';

/** Options of {@link ConsistentHashAdapter}; the names and defaults are those of the `consistent-hash` package. */
export interface ConsistentHashAdapterOptions {
  /** Initial nodes (ids, or ids with weights), added in order. @default [] */
  nodes?: readonly NodeInput[];
  /**
   * Control points per unit of weight (the package's `weight` option): a node of weight `w`
   * gets `round(controlPoints × w)` points.
   * @default 40
   */
  controlPoints?: number;
  /** Size of the package's hash circle: keys and points fall on `0..range-1`. @default 100003 */
  range?: number;
  /**
   * `'random'` places points with `Math.random()` (the package default: two processes
   * disagree unless they restore the same `toJSON()`); `'uniform'` spaces them evenly in
   * insertion order and ignores weights.
   * @default 'random'
   */
  distribution?: 'random' | 'uniform';
  /** With `'uniform'`: orders each batch of new nodes before points are given out. @default insertion order */
  orderNodes?: (nodes: string[]) => string[];
}

/** The part of the `consistent-hash` v1.2 API the adapter uses. */
interface ConsistentHash {
  keyCount: number;
  add(node: string, weight?: number, points?: number[]): unknown;
  remove(node: string): unknown;
  get(name: string): string | null;
  get(name: string, count: number): string[] | null;
  getPoints(node: string): number[] | undefined;
  getNodes(): string[];
}
const ConsistentHash = ConsistentHashModule as new (options: {
  range: number;
  weight: number;
  distribution: 'random' | 'uniform';
  orderNodes?: (nodes: string[]) => string[];
}) => ConsistentHash;

// `ignoreBOM` keeps a leading U+FEFF, as `Buffer#toString()` (what the package applies to a Buffer) does.
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

/** The key as the package hashes it: text as is, bytes decoded as UTF-8 like a `Buffer`. */
function text(key: string | Uint8Array): string {
  if (typeof key === 'string') return key;
  if (key instanceof Uint8Array) return decoder.decode(key);
  throw new InvalidOptionError('key', 'a string or a Uint8Array', key);
}

/**
 * The `consistent-hash` npm package (v1.2) behind the {@link Partitioner} interface, for
 * services migrating from it: lookups go through the package itself, so mappings are
 * identical for the same control points. The adapter adds what the package lacks —
 * typed errors (it silently doubles a duplicate node and returns `null` when empty),
 * weights as ratios, and a `toJSON()` that records every node's control points, so a
 * restart can restore the exact mapping even with random placement.
 *
 * Its flaws stay: random placement by default, insertion-order dependence in `'uniform'`
 * mode, a 24-bit PJW string hash reduced to 100,003 positions (correlated keys such as
 * `user:1`, `user:2` spread poorly), no pluggable hash. Prefer {@link RingPartitioner}
 * for new code; see the README for measurements.
 *
 * @example
 * ```ts
 * const legacy = ConsistentHashAdapter.fromJSON(savedState); // the same points as before
 * legacy.owner('session:1');
 * ```
 */
export class ConsistentHashAdapter extends BasePartitioner {
  /** @inheritDoc */
  readonly strategy: 'consistent-hash' = 'consistent-hash';
  /** Control points per unit of weight. */
  readonly controlPoints: number;
  /** Hash circle size. */
  readonly range: number;
  /** Point placement. */
  readonly distribution: 'random' | 'uniform';
  readonly #ring: ConsistentHash;
  #restoring: Map<string, number[]> | undefined;

  /** @throws {InvalidOptionError} When an option is invalid. */
  constructor(options: ConsistentHashAdapterOptions = {}) {
    const hash = (options as { hash?: unknown }).hash;
    if (hash !== undefined) throw new InvalidOptionError('hash', 'left out (consistent-hash always uses its own PJW hash)', hash);
    super({});
    this.controlPoints = integer('controlPoints', options.controlPoints ?? 40, { min: 1 });
    this.range = integer('range', options.range ?? 100003, { min: 2, max: 2 ** 26 });
    this.distribution = oneOf('distribution', options.distribution ?? 'random', ['random', 'uniform']);
    if (options.orderNodes !== undefined && typeof options.orderNodes !== 'function') {
      throw new InvalidOptionError('orderNodes', 'a function', options.orderNodes);
    }
    this.#ring = new ConsistentHash({
      range: this.range,
      weight: this.controlPoints,
      distribution: this.distribution,
      ...(options.orderNodes ? { orderNodes: options.orderNodes } : {}),
    });
    this.addAll(options.nodes);
  }

  /**
   * Restores the exact mapping, control points included, from {@link ConsistentHashAdapter.toJSON}.
   * To adopt a ring built with the package directly, write the state yourself:
   * `{ version: 1, strategy: 'consistent-hash', options: { range, controlPoints }, nodes: hr.getNodes().map((id) => ({ id, weight: 1 })), extra: { points: Object.fromEntries(hr.getNodes().map((id) => [id, hr.getPoints(id)])) } }`.
   */
  static fromJSON(state: PartitionerState, options: { hash?: undefined } = {}): ConsistentHashAdapter {
    const s = checkState(state, 'consistent-hash');
    const adapter = new ConsistentHashAdapter({
      ...options,
      controlPoints: s.options.controlPoints as number,
      range: s.options.range as number,
      distribution: s.options.distribution as 'random' | 'uniform',
    });
    const points = (s.extra?.points ?? {}) as Record<string, number[]>;
    adapter.#restoring = new Map(Object.entries(points));
    try {
      adapter.addAll(s.nodes);
    } finally {
      adapter.#restoring = undefined;
    }
    return adapter;
  }

  /** {@inheritDoc Partitioner.owner} Byte keys are decoded as UTF-8, as the package does with a `Buffer`. */
  owner(key: string | Uint8Array): string {
    const node = this.#ring.get(text(key));
    if (node === null) this.empty();
    return node;
  }

  /**
   * {@inheritDoc Partitioner.preferenceList}
   * The package's list, then — only where it comes up short, because a node has no point
   * of its own left (in `'uniform'` mode a later batch of nodes can take every point of an
   * earlier one) — the missing nodes in insertion order.
   */
  preferenceList(key: string | Uint8Array, n: number): string[] {
    this.checkCount(n);
    if (n === 0) return [];
    const list = this.#ring.get(text(key), n) ?? [];
    if (list.length < n) {
      for (const id of this.weights.keys()) {
        if (list.length === n) break;
        if (!list.includes(id)) list.push(id);
      }
    }
    return list;
  }

  /**
   * The nodes in the package's own order (a removal moves its last node into the gap). Where
   * two nodes share a control point, the later one in this order owns it, so `toJSON()` keeps
   * this order for a restore to map such points the same way.
   */
  override nodes(): NodeEntry[] {
    return this.#ring.getNodes().map((id) => ({ id, weight: this.weights.get(id)! }));
  }

  /** The node's control points on the package's circle. */
  points(node: string): number[] {
    return [...(this.#ring.getPoints(node) ?? [])];
  }

  override toJSON(): PartitionerState {
    const points: Record<string, number[]> = {};
    for (const id of this.weights.keys()) points[id] = this.points(id);
    return { ...super.toJSON(), extra: { points } };
  }

  protected stateOptions(): Record<string, unknown> {
    return { controlPoints: this.controlPoints, range: this.range, distribution: this.distribution };
  }

  protected onAdd(node: string, weight: number): void {
    const restored = this.#restoring?.get(node);
    if (restored !== undefined) {
      if (!Array.isArray(restored) || restored.length === 0 || restored.some((p) => !Number.isInteger(p) || p < 0 || p >= this.range)) {
        throw new InvalidOptionError(
          `state.extra.points[${JSON.stringify(node)}]`,
          `a non-empty array of integers between 0 and ${this.range - 1}`,
          restored,
        );
      }
      this.#ring.add(node, restored.length, restored);
      return;
    }
    if (this.distribution === 'uniform' && weight !== 1) {
      throw new InvalidOptionError('weight', "1 with distribution 'uniform' (consistent-hash ignores weights there)", weight);
    }
    const count = Math.max(1, Math.round(weight * this.controlPoints));
    if (this.distribution === 'random' && count > this.range) {
      throw new InvalidOptionError(
        'weight',
        `at most ${this.range / this.controlPoints}: round(controlPoints × weight) points must fit on the circle of ${this.range} positions`,
        weight,
      );
    }
    try {
      this.#ring.add(node, count);
    } catch (error) {
      // Random placement gives up after 100 collisions: the circle is too full.
      throw new InvalidOptionError(
        'range',
        `large enough for ${this.#ring.keyCount} control points and more (${String(error)})`,
        this.range,
      );
    }
  }

  protected onRemove(node: string): void {
    this.#ring.remove(node);
    // The package drops its point map on remove and only rebuilds it on the next lookup;
    // a random-placement add() before that throws a TypeError. getPoints() rebuilds it.
    if (this.distribution === 'random') this.#ring.getPoints(node);
  }
}
