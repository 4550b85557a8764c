import type { EndpointState, PickContext, Strategy } from '../types.ts';
import { Sampler } from './sampler.ts';

/**
 * Least connections: the candidate with the fewest in-flight requests per unit of
 * weight (`inFlight / weight`), ties broken at random. Scans every candidate: O(n).
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: leastConnections() });
 * ```
 */
export function leastConnections(): Strategy {
  let ties = new Int32Array(16);
  const sampler = new Sampler();
  return {
    name: 'least-connections',
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      const n = candidates.length;
      if (ties.length < n) ties = new Int32Array(n);
      const uniform = sampler.uniform(candidates);
      let best = candidates[0] as EndpointState;
      let count = 1;
      ties[0] = 0;
      for (let i = 1; i < n; i++) {
        const e = candidates[i] as EndpointState;
        // inFlight / weight, compared without dividing (or without weights when all are equal).
        const lhs = uniform ? e.inFlight : e.inFlight * best.weight;
        const rhs = uniform ? best.inFlight : best.inFlight * e.weight;
        if (lhs < rhs) {
          best = e;
          count = 1;
          ties[0] = i;
        } else if (lhs === rhs) {
          ties[count++] = i;
        }
      }
      if (count === 1) return best;
      return candidates[ties[Math.floor(context.random() * count)] as number] as EndpointState;
    },
  };
}
