import type { BalancingStrategy, EndpointState, PickContext, PickOutcome } from '../types.ts';
import { Sampler } from './sampler.ts';

/** Where an endpoint sits in the in-flight buckets of one candidate array. */
class Slot {
  index = -1;
  generation = -1;
}

/**
 * Least connections: the candidate with the fewest in-flight requests per unit of
 * weight (`inFlight / weight`), ties broken at random.
 *
 * With equal weights it is O(1): candidates sit in buckets by in-flight count, the
 * lowest non-empty bucket answers and a random member of it wins. With unequal
 * weights it scans every candidate, O(n).
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: leastConnections() });
 * ```
 */
export function leastConnections(): BalancingStrategy {
  const sampler = new Sampler();
  let ties = new Int32Array(16);
  // Buckets, rebuilt from the true in-flight counts whenever the candidate array changes.
  let synced: readonly EndpointState[] | undefined;
  let generation = 0;
  let buckets: number[][] = [];
  let level = new Int32Array(0);
  let position = new Int32Array(0);
  let lowest = 0;

  const insert = (index: number, count: number): void => {
    let bucket = buckets[count];
    if (bucket === undefined) {
      for (let k = buckets.length; k <= count; k++) buckets.push([]);
      bucket = buckets[count] as number[];
    }
    position[index] = bucket.length;
    level[index] = count;
    bucket.push(index);
  };
  const take = (index: number): void => {
    const bucket = buckets[level[index] as number] as number[];
    const last = bucket.pop() as number;
    if (last !== index) {
      const at = position[index] as number;
      bucket[at] = last;
      position[last] = at;
    }
  };
  const rebuild = (candidates: readonly EndpointState[]): void => {
    synced = candidates;
    generation++;
    buckets = [];
    level = new Int32Array(candidates.length);
    position = new Int32Array(candidates.length);
    lowest = Number.POSITIVE_INFINITY;
    for (let i = 0; i < candidates.length; i++) {
      const e = candidates[i] as EndpointState;
      const slot = e.data as Slot;
      slot.index = i;
      slot.generation = generation;
      insert(i, e.inFlight);
      if (e.inFlight < lowest) lowest = e.inFlight;
    }
  };

  const scan = (candidates: readonly EndpointState[], random: () => number, declined: EndpointState | undefined): EndpointState => {
    const n = candidates.length;
    if (ties.length < n) ties = new Int32Array(n);
    // Slow start declined candidates[0]: start from the next one (n >= 2 whenever it declines).
    const start = declined !== undefined && candidates[0] === declined && n > 1 ? 1 : 0;
    let best = candidates[start] as EndpointState;
    let count = 1;
    ties[0] = start;
    for (let i = start + 1; i < n; i++) {
      const e = candidates[i] as EndpointState;
      if (e === declined) continue;
      // inFlight / weight, compared without dividing.
      const lhs = e.inFlight * best.weight;
      const rhs = best.inFlight * e.weight;
      if (lhs < rhs) {
        best = e;
        count = 1;
        ties[0] = i;
      } else if (lhs === rhs) {
        ties[count++] = i;
      }
    }
    return count === 1 ? best : (candidates[ties[Math.floor(random() * count)] as number] as EndpointState);
  };

  const draw = (bucket: number[], random: () => number): number =>
    bucket.length === 1 ? (bucket[0] as number) : (bucket[Math.floor(random() * bucket.length)] as number);
  /** The index of `e` in the synced candidates, or -1. */
  const indexOf = (e: EndpointState): number => {
    const slot = e.data as Slot;
    return slot.generation === generation ? slot.index : -1;
  };
  /** A least-loaded index other than `declined`: from the lowest bucket, or the next one when `declined` is alone there. */
  const drawExcept = (declined: number, random: () => number): number => {
    for (let count = lowest; count < buckets.length; count++) {
      const bucket = buckets[count] as number[];
      if (bucket.length === 0 || (bucket.length === 1 && bucket[0] === declined)) continue;
      if (level[declined] !== count) return draw(bucket, random);
      // Draw among the others: skip the declined one's position.
      const at = Math.floor(random() * (bucket.length - 1));
      return bucket[at >= (position[declined] as number) ? at + 1 : at] as number;
    }
    return declined;
  };

  return {
    name: 'least-connections',
    onAdd(endpoint: EndpointState): void {
      endpoint.data = new Slot();
    },
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      if (!sampler.uniform(candidates)) return scan(candidates, context.random, context.declined);
      if (candidates !== synced) rebuild(candidates);
      let bucket = buckets[lowest] as number[];
      while (bucket.length === 0) bucket = buckets[++lowest] as number[];
      const declined = context.declined === undefined ? -1 : indexOf(context.declined);
      const index = declined === -1 ? draw(bucket, context.random) : drawExcept(declined, context.random);
      const count = level[index] as number;
      take(index);
      insert(index, count + 1);
      return candidates[index] as EndpointState;
    },
    onDone(endpoint: EndpointState, _outcome: PickOutcome): void {
      const slot = endpoint.data as Slot;
      if (slot.generation !== generation || synced === undefined) return;
      const index = slot.index;
      const count = level[index] as number;
      if (count === 0) return;
      take(index);
      insert(index, count - 1);
      if (count - 1 < lowest) lowest = count - 1;
    },
  };
}
