import { type HashFunction, keyMix, score } from './hash.ts';
import { BasePartitioner, checkState, type PartitionerOptions, type PartitionerState } from './partitioner.ts';

/** Options of {@link RendezvousPartitioner}. */
export interface RendezvousOptions extends PartitionerOptions {}

/** Seed under which node ids are hashed (keys use seed 0). */
const NODE_SEED = 0x5bd1e995;
const TWO_32 = 4294967296;

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
  /** True while every weight is equal: the log can be skipped. */
  #uniform = true;

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
    const nodeHash = this.#nodeHash;
    let best = 0;
    if (this.#uniform) {
      let top = score(h, nodeHash[0]!);
      for (let i = 1; i < n; i++) {
        const s = score(h, nodeHash[i]!);
        if (s > top || (s === top && ids[i]! < ids[best]!)) {
          top = s;
          best = i;
        }
      }
    } else {
      const weight = this.#weight;
      let top = -1;
      for (let i = 0; i < n; i++) {
        const s = weight[i]! / -Math.log((score(h, nodeHash[i]!) + 0.5) / TWO_32);
        if (s > top || (s === top && ids[i]! < ids[best]!)) {
          top = s;
          best = i;
        }
      }
    }
    return ids[best]!;
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
      const grow = (a: Float64Array): Float64Array => {
        const b = new Float64Array(i * 2);
        b.set(a);
        return b;
      };
      const hashes = new Uint32Array(i * 2);
      hashes.set(this.#nodeHash);
      this.#nodeHash = hashes;
      this.#weight = grow(this.#weight);
      this.#scores = new Float64Array(i * 2);
    }
    this.#ids.push(node);
    this.#nodeHash[i] = this.hash(node, NODE_SEED) >>> 0;
    this.#weight[i] = weight;
    this.#uniform = i === 0 || (this.#uniform && weight === this.#weight[0]);
  }

  protected onRemove(node: string): void {
    const ids = this.#ids;
    const i = ids.indexOf(node);
    const last = ids.length - 1;
    ids[i] = ids[last]!;
    this.#nodeHash[i] = this.#nodeHash[last]!;
    this.#weight[i] = this.#weight[last]!;
    ids.pop();
    this.#uniform = true;
    for (let k = 1; k < ids.length; k++) if (this.#weight[k] !== this.#weight[0]) this.#uniform = false;
  }
}
