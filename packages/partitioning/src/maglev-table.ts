import type { HashFunction } from './hash.ts';

/** Seed of the hash giving a node's `offset` (the paper's h1): `offset = hash(id, OFFSET_SEED) mod M`. */
export const OFFSET_SEED = 0x6d61676c;
/** Seed of the hash giving a node's `skip` (the paper's h2): `skip = hash(id, SKIP_SEED) mod (M − 1) + 1`. */
export const SKIP_SEED = 0x65767370;
/** Clearing an entry costs a small fraction of a probe; filling one costs a few. */
const CLEAR_PER_UNIT = 16;
const FILL_UNITS = 4;

/**
 * One Maglev table being filled (Eisenbud et al., NSDI 2016). Nodes, in the order given,
 * take turns claiming the next free entry of their own permutation of the table
 * (`offset + k × skip` modulo the prime size); a node of weight `w` earns `w / maxWeight`
 * of a turn per round. The fill can stop after any number of probes and resume later:
 * its whole state lives in this object, so a table filled in chunks is identical, entry
 * for entry, to one filled in one go.
 */
export class MaglevTableFill {
  /** The table: entry → index into {@link ids}; -1 while unfilled. */
  readonly table: Int32Array;
  /** The nodes, in turn order. */
  readonly ids: readonly string[];
  /** The weights, by node index. */
  readonly weights: Float64Array;
  readonly #offset: Int32Array;
  readonly #skip: Int32Array;
  readonly #credit: Float64Array;
  readonly #share: Float64Array;
  #filled = 0;
  /** Entries reset to -1 so far: a reused buffer is cleared in chunks too. */
  #cleared = 0;
  /** The node whose turn is next. */
  #turn = 0;

  /**
   * @param ids Node ids in turn order (sorted, so the table depends only on the set).
   * @param weightOf Each node's weight.
   * @param size The table size, a prime at least `ids.length` (≥ 1).
   * @param buffer A table of `size` entries to fill in place, when the caller no longer needs it.
   */
  constructor(ids: readonly string[], weightOf: (id: string) => number, hash: HashFunction, size: number, buffer?: Int32Array) {
    const n = ids.length;
    this.ids = ids;
    this.table = buffer?.length === size ? buffer : new Int32Array(size);
    this.weights = new Float64Array(n);
    this.#offset = new Int32Array(n);
    this.#skip = new Int32Array(n);
    this.#credit = new Float64Array(n);
    this.#share = new Float64Array(n);
    let maxWeight = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[i]!;
      this.weights[i] = weightOf(id);
      maxWeight = Math.max(maxWeight, this.weights[i]!);
      this.#offset[i] = (hash(id, OFFSET_SEED) >>> 0) % size;
      this.#skip[i] = ((hash(id, SKIP_SEED) >>> 0) % (size - 1)) + 1;
    }
    for (let i = 0; i < n; i++) this.#share[i] = this.weights[i]! / maxWeight;
  }

  /** True once every entry is filled. */
  get done(): boolean {
    return this.#filled === this.table.length;
  }

  /**
   * Fills entries until the table is complete or about `budget` units of work are spent
   * (one unit per turn and per probe of a taken entry, four per entry filled — a write to a
   * random place in a large table — and one per 16 entries cleared before the fill starts);
   * returns the units spent. Pass
   * `Infinity` to finish in one go.
   */
  fill(budget: number): number {
    const table = this.table;
    const m = table.length;
    const n = this.ids.length;
    const offset = this.#offset;
    const skip = this.#skip;
    const credit = this.#credit;
    const share = this.#share;
    let filled = this.#filled;
    let i = this.#turn;
    let spent = 0;
    if (this.#cleared < m) {
      const end = Math.min(m, this.#cleared + budget * CLEAR_PER_UNIT);
      table.fill(-1, this.#cleared, end);
      spent += Math.ceil((end - this.#cleared) / CLEAR_PER_UNIT);
      this.#cleared = end;
    }
    while (filled < m && spent < budget) {
      spent++;
      credit[i]! += share[i]!;
      if (credit[i]! >= 1) {
        credit[i]! -= 1;
        let c = offset[i]!;
        const step = skip[i]!;
        while (table[c]! >= 0) {
          c += step;
          if (c >= m) c -= m;
          spent++;
        }
        table[c] = i;
        c += step;
        offset[i] = c >= m ? c - m : c;
        filled++;
        spent += FILL_UNITS;
      }
      if (++i === n) i = 0;
    }
    this.#filled = filled;
    this.#turn = i;
    return spent;
  }
}

/**
 * The default table size for `nodes` nodes: the first prime above the smallest power of two
 * ≥ 100 × nodes, at least 131,101 (the first prime above 2^17). Powers of two keep the size
 * stable across most membership changes; the floor keeps movement on a change within about
 * 1.4 × the ideal at 100 nodes.
 */
export function defaultTableSize(nodes: number): number {
  const target = 2 ** Math.max(17, Math.ceil(Math.log2(Math.max(1, nodes) * 100)));
  let p = target + 1;
  while (!isPrime(p)) p += 2;
  return p;
}

/** True when `n` is prime (trial division; table sizes are at most 2^30). */
export function isPrime(n: number): boolean {
  if (n < 2) return false;
  if (n % 2 === 0) return n === 2;
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false;
  return true;
}
