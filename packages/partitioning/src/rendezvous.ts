import { type HashFunction, keyMix, score } from './hash.ts';
import { BasePartitioner, checkState, type PartitionerOptions, type PartitionerState } from './partitioner.ts';
import { SimdScan } from './rendezvous-simd.ts';

/** Options of {@link RendezvousPartitioner}. */
export interface RendezvousOptions extends PartitionerOptions {}

/** Seed under which node ids are hashed (keys use seed 0). */
const NODE_SEED = 0x5bd1e995;
const TWO_32 = 4294967296;
/** From this many nodes, equal-weight lookups run in WebAssembly SIMD where available. */
const SIMD_NODES = 16;

/**
 * Rendezvous (highest-random-weight) hashing: every node scores the key and the highest
 * score wins. Weighted with the logarithmic method (`score = w / -ln(u)`, u uniform in
 * (0,1)), so a node's share is exactly proportional to its weight. No table, no virtual
 * nodes, near-perfect balance and minimal movement; the preference list is simply the
 * nodes in score order. A lookup costs O(nodes) — fine for tens to a few hundred nodes;
 * prefer maglev or the ring beyond that.
 *
 * @example
 * ```ts
 * const hrw = new RendezvousPartitioner({ nodes: ['a', 'b', { id: 'c', weight: 3 }] });
 * hrw.preferenceList('tenant:7', 2); // ['c', 'b']
 * ```
 */
export class RendezvousPartitioner extends BasePartitioner {
  /** @inheritDoc */
  readonly strategy: 'rendezvous' = 'rendezvous';
  readonly #ids: string[] = [];
  #nodeHash: Uint32Array = new Uint32Array(8);
  #weight: Float64Array = new Float64Array(8);
  #scores: Float64Array = new Float64Array(8);
  /** `nodeHash ^ (nodeHash >>> 16)`, the first step of `score`, done once per node. */
  #premixed: Int32Array = new Int32Array(8);
  /** `weight × 2^32 × (1 + 1e-9)`: the bound that lets weighted lookups skip the log. */
  #bound: Float64Array = new Float64Array(8);
  /** True while every weight is equal: the log can be skipped. */
  #uniform = true;
  /** True while two nodes share a hash: their scores tie for every key. */
  #collisions = false;
  /** The SIMD scan: undefined until first needed, null where unavailable. */
  #simd: SimdScan | null | undefined;
  /** True when nodes changed since the SIMD scan's copy was made. */
  #simdStale = true;

  /** @throws {InvalidOptionError} When an option is invalid. */
  constructor(options: RendezvousOptions = {}) {
    super(options);
    this.addAll(options.nodes);
  }

  /** Restores a partitioner from {@link RendezvousPartitioner.toJSON}. */
  static fromJSON(state: PartitionerState, options: { hash?: HashFunction } = {}): RendezvousPartitioner {
    return new RendezvousPartitioner({ ...options, nodes: checkState(state, 'rendezvous').nodes });
  }

  /** {@inheritDoc Partitioner.owner} */
  owner(key: string | Uint8Array): string {
    const ids = this.#ids;
    const n = ids.length;
    if (n === 0) this.empty();
    const h = keyMix(this.hash(key) >>> 0);
    if (this.#uniform && !this.#collisions) return ids[this.#uniformOwner(h, n)]!;
    const nodeHash = this.#nodeHash;
    let best = 0;
    if (this.#uniform) {
      // Two nodes with the same 32-bit hash always score alike: the lower id wins.
      let top = score(h, nodeHash[0]!);
      for (let i = 1; i < n; i++) {
        const s = score(h, nodeHash[i]!);
        if (s > top || (s === top && ids[i]! < ids[best]!)) {
          top = s;
          best = i;
        }
      }
      return ids[best]!;
    }
    const weight = this.#weight;
    const bound = this.#bound;
    let top = -1;
    for (let i = 0; i < n; i++) {
      const u = score(h, nodeHash[i]!);
      // -ln(x) ≥ 1 - x, so w / -ln(x) ≤ w / (1 - x): a node whose bound is below the best
      // score by more than rounding can ever account for cannot win, and skips the log.
      if ((TWO_32 - 0.5 - u) * top > bound[i]!) continue;
      const s = weight[i]! / -Math.log((u + 0.5) / TWO_32);
      if (s > top || (s === top && ids[i]! < ids[best]!)) {
        top = s;
        best = i;
      }
    }
    return ids[best]!;
  }

  /**
   * The owner's index when every weight is equal and no two node hashes collide: then
   * `w / -ln(u)` orders nodes as `u` does and no two scores tie, so the highest
   * `score(h, nodeHash)` wins, compared as integers. `score` is `fmix32(h ^ nodeHash)`;
   * its first step `x ^ (x >>> 16)` is linear, so it is applied to the key once and to
   * each node hash in advance (`#premixed`). Its last step leaves the top 16 bits alone,
   * so a node whose top 16 bits are below the best's cannot win and skips it. From
   * {@link SIMD_NODES} nodes the same scan runs in WebAssembly SIMD, eight nodes at a time.
   */
  #uniformOwner(h: number, n: number): number {
    const pre = this.#premixed;
    const k = h ^ (h >>> 16);
    if (n >= SIMD_NODES) {
      const simd = this.#simd === undefined ? (this.#simd = SimdScan.create()) : this.#simd;
      if (simd !== null) {
        if (this.#simdStale) {
          simd.load(pre, n);
          this.#simdStale = false;
        }
        return simd.best(k);
      }
    }
    let best = 0;
    let top = -1;
    let topHigh = -1;
    for (let i = 0; i < n; i++) {
      let x = Math.imul(k ^ pre[i]!, 0x85ebca6b);
      x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
      const high = x >>> 16;
      if (high >= topHigh) {
        const s = (x ^ high) >>> 0;
        if (s > top) {
          top = s;
          topHigh = high;
          best = i;
        }
      }
    }
    return best;
  }

  /** {@inheritDoc Partitioner.preferenceList} */
  preferenceList(key: string | Uint8Array, n: number): string[] {
    this.checkCount(n);
    const ids = this.#ids;
    const size = ids.length;
    if (n === 0) return [];
    const h = keyMix(this.hash(key) >>> 0);
    const scores = this.#scores;
    for (let i = 0; i < size; i++) {
      const u = score(h, this.#nodeHash[i]!);
      scores[i] = this.#uniform ? u : this.#weight[i]! / -Math.log((u + 0.5) / TWO_32);
    }
    const result: string[] = [];
    // Partial selection: n is usually small (replica count).
    for (let r = 0; r < n; r++) {
      let best = -1;
      for (let i = 0; i < size; i++) {
        if (scores[i]! < 0) continue;
        if (best < 0 || scores[i]! > scores[best]! || (scores[i] === scores[best] && ids[i]! < ids[best]!)) best = i;
      }
      result.push(ids[best]!);
      scores[best] = -1;
    }
    return result;
  }

  protected stateOptions(): Record<string, unknown> {
    return {};
  }

  protected onAdd(node: string, weight: number): void {
    const i = this.#ids.length;
    if (i === this.#nodeHash.length) {
      const grow = <T extends Float64Array | Uint32Array | Int32Array>(a: T, make: new (n: number) => T): T => {
        const b = new make(i * 2);
        b.set(a);
        return b;
      };
      this.#nodeHash = grow(this.#nodeHash, Uint32Array);
      this.#premixed = grow(this.#premixed, Int32Array);
      this.#weight = grow(this.#weight, Float64Array);
      this.#bound = grow(this.#bound, Float64Array);
      this.#scores = new Float64Array(i * 2);
    }
    const hash = this.hash(node, NODE_SEED) >>> 0;
    this.#collisions ||= this.#nodeHash.subarray(0, i).includes(hash);
    this.#ids.push(node);
    this.#set(i, hash, weight);
    this.#uniform = i === 0 || (this.#uniform && weight === this.#weight[0]);
  }

  protected onRemove(node: string): void {
    const ids = this.#ids;
    const i = ids.indexOf(node);
    const last = ids.length - 1;
    ids[i] = ids[last]!;
    this.#set(i, this.#nodeHash[last]!, this.#weight[last]!);
    ids.pop();
    this.#uniform = true;
    for (let k = 1; k < ids.length; k++) if (this.#weight[k] !== this.#weight[0]) this.#uniform = false;
    if (this.#collisions) this.#collisions = new Set(this.#nodeHash.subarray(0, ids.length)).size < ids.length;
  }

  #set(i: number, hash: number, weight: number): void {
    this.#simdStale = true;
    this.#nodeHash[i] = hash;
    this.#premixed[i] = hash ^ (hash >>> 16);
    this.#weight[i] = weight;
    this.#bound[i] = weight * TWO_32 * (1 + 1e-9);
  }
}
