import { InvalidOptionError, oneOf } from '@ballast/common';
import { JumpRemoveNotLastError, UnknownNodeError } from './errors.ts';
import type { HashFunction } from './hash.ts';
import { BasePartitioner, checkState, type NodeEntry, type PartitionerOptions, type PartitionerState } from './partitioner.ts';

/** Options of {@link JumpPartitioner}. */
export interface JumpOptions extends PartitionerOptions {
  /**
   * What `remove()` does with a node that is not in the last bucket. Jump hash numbers its
   * buckets 0..n-1 and can only drop the last one without remapping the others.
   * - `'last'`: refuse with a `JumpRemoveNotLastError` (only the last node can leave).
   * - `'swap'`: move the last node into the freed bucket. Keys of both the removed node
   *   and the moved node change owner: about 2/n of the keys instead of 1/n.
   * @default 'last'
   */
  removal?: 'last' | 'swap';
}

// The 64-bit multiplier of the reference implementation, 2862933555777941757, in 16-bit limbs.
const C_HI = 0x27bb2ee6;
const C_LO = 0x87b0b0fd;
const C0 = C_LO & 0xffff;
const C1 = C_LO >>> 16;

/**
 * Lamping & Veach jump consistent hash of the 64-bit key `hi·2^32 + lo` into `buckets`
 * buckets, bit for bit the same as the reference C++ `JumpConsistentHash` — computed with
 * 32-bit arithmetic, no BigInt.
 *
 * @param hi High 32 bits of the key (unsigned).
 * @param lo Low 32 bits of the key (unsigned).
 * @param buckets Number of buckets, ≥ 1.
 * @returns A bucket in `[0, buckets)`.
 * @example
 * ```ts
 * jumpHash(0, murmur3('user:42'), 10); // a bucket in 0..9
 * ```
 */
export function jumpHash(hi: number, lo: number, buckets: number): number {
  // The 64-bit state lives in two int32s; every partial product below is a 16×16 or
  // 16×32-bit product taken with Math.imul, so nothing leaves int32 arithmetic.
  hi |= 0;
  lo |= 0;
  let b = -1;
  let j = 0;
  while (j < buckets) {
    b = j;
    // key = key × C + 1 (mod 2^64)
    const a0 = lo & 0xffff;
    const a1 = lo >>> 16;
    const p00 = Math.imul(a0, C0);
    const p01 = Math.imul(a0, C1);
    const p10 = Math.imul(a1, C0);
    const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
    const low = ((mid & 0xffff) << 16) | (p00 & 0xffff);
    hi =
      (Math.imul(a1, C1) + (p01 >>> 16) + (p10 >>> 16) + (mid >>> 16) + Math.imul(lo, C_HI) + Math.imul(hi, C_LO) + (low === -1 ? 1 : 0)) |
      0;
    lo = (low + 1) | 0;
    j = Math.floor((b + 1) * (2147483648 / ((hi >>> 1) + 1)));
  }
  return b;
}

/**
 * Jump consistent hash (Lamping & Veach, 2014): no memory beyond the node list, O(log n)
 * lookups, perfectly even load and minimal movement when buckets are added or the last
 * one is removed. Nodes are numbered buckets in the order they were added
 * (`bucketOf()`, `nodeAt()`); there are no weights, and only the last bucket can be
 * removed cheaply (see {@link JumpOptions.removal}). Use it for numbered shards; use the
 * ring, rendezvous or maglev strategies for servers that come and go in any order.
 *
 * @example
 * ```ts
 * const shards = new JumpPartitioner({ nodes: ['shard-0', 'shard-1', 'shard-2'] });
 * shards.owner('order:1001'); // 'shard-1'
 * shards.add('shard-3'); // moves only about a quarter of the keys, all to shard-3
 * ```
 */
export class JumpPartitioner extends BasePartitioner {
  /** @inheritDoc */
  readonly strategy: 'jump' = 'jump';
  /** What `remove()` does with a node that is not last. */
  readonly removal: 'last' | 'swap';
  readonly #buckets: string[] = [];
  readonly #bucketOf = new Map<string, number>();

  /** @throws {InvalidOptionError} When an option is invalid. */
  constructor(options: JumpOptions = {}) {
    super(options);
    this.removal = oneOf('removal', options.removal ?? 'last', ['last', 'swap']);
    this.addAll(options.nodes);
  }

  /** Restores a partitioner (bucket order included) from {@link JumpPartitioner.toJSON}. */
  static fromJSON(state: PartitionerState, options: { hash?: HashFunction } = {}): JumpPartitioner {
    const s = checkState(state, 'jump');
    return new JumpPartitioner({ ...options, removal: s.options.removal as 'last' | 'swap', nodes: s.nodes });
  }

  /** {@inheritDoc Partitioner.owner} */
  owner(key: string | Uint8Array): string {
    const buckets = this.#buckets;
    if (buckets.length === 0) this.empty();
    return buckets[jumpHash(0, this.hash(key), buckets.length)]!;
  }

  /**
   * {@inheritDoc Partitioner.preferenceList}
   * The r-th candidate is the jump hash of the key extended with r, so each replica moves
   * as little as the owner does when buckets are added.
   */
  preferenceList(key: string | Uint8Array, n: number): string[] {
    this.checkCount(n);
    const buckets = this.#buckets;
    const h = this.hash(key);
    const taken = new Set<number>();
    const result: string[] = [];
    for (let r = 0; result.length < n && r < 16 * buckets.length + 16; r++) {
      const b = jumpHash(r, h, buckets.length);
      if (taken.has(b)) continue;
      taken.add(b);
      result.push(buckets[b]!);
    }
    // Rarely, n close to the bucket count: take the rest in bucket order.
    for (let b = 0; result.length < n; b++) if (!taken.has(b)) result.push(buckets[b]!);
    return result;
  }

  /** The bucket number of `node`. @throws {UnknownNodeError} When it is not present. */
  bucketOf(node: string): number {
    const b = this.#bucketOf.get(node);
    if (b === undefined) throw new UnknownNodeError(node);
    return b;
  }

  /** The node in bucket `bucket`. @throws {InvalidOptionError} When there is no such bucket. */
  nodeAt(bucket: number): string {
    const buckets = this.#buckets;
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= buckets.length) {
      throw new InvalidOptionError(
        'bucket',
        buckets.length === 0 ? 'a bucket number, but there is no node' : `an integer between 0 and ${buckets.length - 1}`,
        bucket,
      );
    }
    return buckets[bucket]!;
  }

  /** The bucket a key falls in (the owner's bucket number). */
  bucket(key: string | Uint8Array): number {
    if (this.#buckets.length === 0) this.empty();
    return jumpHash(0, this.hash(key), this.#buckets.length);
  }

  /** The nodes in bucket order, all of weight 1. */
  override nodes(): NodeEntry[] {
    return this.#buckets.map((id) => ({ id, weight: 1 }));
  }

  protected stateOptions(): Record<string, unknown> {
    return { removal: this.removal };
  }

  protected onAdd(node: string, weight: number): void {
    if (weight !== 1) throw new InvalidOptionError('weight', '1 (jump consistent hash has no weights)', weight);
    this.#bucketOf.set(node, this.#buckets.length);
    this.#buckets.push(node);
  }

  protected onRemove(node: string): void {
    const buckets = this.#buckets;
    const b = this.#bucketOf.get(node)!;
    const last = buckets[buckets.length - 1]!;
    if (b !== buckets.length - 1) {
      if (this.removal === 'last') throw new JumpRemoveNotLastError(node, last);
      buckets[b] = last;
      this.#bucketOf.set(last, b);
    }
    buckets.pop();
    this.#bucketOf.delete(node);
  }
}
