import { InvalidOptionError } from '@ballast/common';
import type { Partitioner } from './partitioner.ts';

/** Throws unless `value` can answer `owner()` and `nodes()`. */
function checkPartitioner(option: string, value: unknown): void {
  const p = value as Partitioner | null;
  if (p === null || typeof p !== 'object' || typeof p.owner !== 'function' || typeof p.nodes !== 'function') {
    throw new InvalidOptionError(option, 'a Partitioner', value);
  }
}

/** Throws unless `keys` is iterable (an array, a Set, a generator...). */
function checkKeys(keys: unknown): void {
  if (typeof (keys as Iterable<unknown> | null)?.[Symbol.iterator] !== 'function' || typeof keys === 'string') {
    throw new InvalidOptionError('keys', 'an iterable of keys (strings or Uint8Arrays)', keys);
  }
}

/** What {@link loadBalance} measured. */
export interface LoadBalance {
  /** Keys counted. */
  keys: number;
  /** Keys owned by each node (0 for a node that owns none). */
  counts: Record<string, number>;
  /** Mean keys per node. */
  mean: number;
  /** Most keys on one node. */
  max: number;
  /** Fewest keys on one node. */
  min: number;
  /**
   * The most loaded node relative to its fair share: `max(count / (keys × weight / totalWeight))`.
   * 1 is perfect balance (also with no key); with equal weights it is `max / mean`.
   */
  peakToMean: number;
  /** Standard deviation of the keys per node. */
  stdDev: number;
  /** Standard deviation of `count / fair share`, comparable across weights and key counts. */
  relativeStdDev: number;
}

/**
 * Counts how many of `keys` each node owns and how far that is from each node's share.
 * Run it on a sample of your real keys before choosing a strategy or a virtual-node count.
 *
 * @throws {InvalidOptionError} When `partitioner` is not a partitioner or `keys` not an iterable of keys (a lone string is refused).
 * @example
 * ```ts
 * const { peakToMean } = loadBalance(ring, userIds);
 * ```
 */
export function loadBalance(partitioner: Partitioner, keys: Iterable<string | Uint8Array>): LoadBalance {
  checkPartitioner('partitioner', partitioner);
  checkKeys(keys);
  const nodes = partitioner.nodes();
  const counts: Record<string, number> = {};
  for (const { id } of nodes) counts[id] = 0;
  let total = 0;
  for (const key of keys) {
    counts[partitioner.owner(key)]!++;
    total++;
  }
  const totalWeight = nodes.reduce((sum, n) => sum + n.weight, 0);
  const mean = total / Math.max(1, nodes.length);
  let max = 0;
  let min = Number.POSITIVE_INFINITY;
  let peak = 0;
  let sq = 0;
  let relSq = 0;
  for (const { id, weight } of nodes) {
    const count = counts[id]!;
    const fair = (total * weight) / totalWeight;
    // No key at all: every node holds exactly its share of nothing.
    const relative = fair === 0 ? (count === 0 ? 1 : Number.POSITIVE_INFINITY) : count / fair;
    max = Math.max(max, count);
    min = Math.min(min, count);
    peak = Math.max(peak, relative);
    sq += (count - mean) ** 2;
    relSq += (relative - 1) ** 2;
  }
  const n = Math.max(1, nodes.length);
  return {
    keys: total,
    counts,
    mean,
    max,
    min: nodes.length === 0 ? 0 : min,
    peakToMean: peak,
    stdDev: Math.sqrt(sq / n),
    relativeStdDev: Math.sqrt(relSq / n),
  };
}

/** What {@link movement} measured. */
export interface Movement {
  /** Keys counted. */
  keys: number;
  /** Keys whose owner differs between the two configurations. */
  moved: number;
  /** `moved / keys`. */
  fraction: number;
  /**
   * The least any partitioner could move: the share of keys that must change hands for
   * every node to hold its weighted share — half the sum over nodes of |share after −
   * share before|. Adding one node to n equal nodes gives 1/(n+1); removing one gives 1/n.
   */
  idealFraction: number;
  /** `fraction / idealFraction`: 1 is optimal (1 also when nothing had to move and nothing did). */
  ratio: number;
}

/**
 * Compares the owners of `keys` under two configurations, e.g. before and after adding a
 * node (snapshot the first with `restorePartitioner(p.toJSON())`).
 *
 * @throws {InvalidOptionError} When `before` or `after` is not a partitioner or `keys` not an iterable of keys.
 * @example
 * ```ts
 * const before = restorePartitioner(ring.toJSON());
 * ring.add('cache-d');
 * movement(before, ring, sampleKeys).ratio; // ~1: only cache-d's new keys moved
 * ```
 */
export function movement(before: Partitioner, after: Partitioner, keys: Iterable<string | Uint8Array>): Movement {
  checkPartitioner('before', before);
  checkPartitioner('after', after);
  checkKeys(keys);
  let total = 0;
  let moved = 0;
  for (const key of keys) {
    if (before.owner(key) !== after.owner(key)) moved++;
    total++;
  }
  const idealFraction = idealMovement(before.nodes(), after.nodes());
  const fraction = total === 0 ? 0 : moved / total;
  const ratio = idealFraction === 0 ? (moved === 0 ? 1 : Number.POSITIVE_INFINITY) : fraction / idealFraction;
  return { keys: total, moved, fraction, idealFraction, ratio };
}

/** Half the L1 distance between the weighted shares of two node sets. */
export function idealMovement(before: readonly { id: string; weight: number }[], after: readonly { id: string; weight: number }[]): number {
  const shares = (nodes: readonly { id: string; weight: number }[]): Map<string, number> => {
    const total = nodes.reduce((sum, n) => sum + n.weight, 0);
    return new Map(nodes.map((n) => [n.id, n.weight / total]));
  };
  const a = shares(before);
  const b = shares(after);
  let sum = 0;
  for (const [id, share] of a) sum += Math.abs(share - (b.get(id) ?? 0));
  for (const [id, share] of b) if (!a.has(id)) sum += share;
  return sum / 2;
}
