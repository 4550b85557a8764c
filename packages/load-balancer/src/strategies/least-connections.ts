import type { EndpointState, Outcome, PickContext, Strategy } from '../types.ts';
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
export function leastConnections(): Strategy {
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

  const scan = (candidates: readonly EndpointState[], random: () => number): EndpointState => {
    const n = candidates.length;
    if (ties.length < n) ties = new Int32Array(n);
    let best = candidates[0] as EndpointState;
    let count = 1;
    ties[0] = 0;
    for (let i = 1; i < n; i++) {
      const e = candidates[i] as EndpointState;
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

  return {
    name: 'least-connections',
    onAdd(endpoint: EndpointState): void {
      endpoint.data = new Slot();
    },
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      if (!sampler.uniform(candidates)) return scan(candidates, context.random);
      if (candidates !== synced) rebuild(candidates);
      let bucket = buckets[lowest] as number[];
      while (bucket.length === 0) bucket = buckets[++lowest] as number[];
      const index = bucket.length === 1 ? (bucket[0] as number) : (bucket[Math.floor(context.random() * bucket.length)] as number);
      take(index);
      insert(index, lowest + 1);
      return candidates[index] as EndpointState;
    },
    onDone(endpoint: EndpointState, _outcome: Outcome): void {
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
