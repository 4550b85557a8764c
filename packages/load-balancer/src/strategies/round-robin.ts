import type { BalancingStrategy, EndpointState } from '../types.ts';

/**
 * Round robin: each candidate in turn, ignoring weights and load. When the candidate
 * set changes, the rotation continues from the same position.
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: roundRobin() });
 * ```
 */
export function roundRobin(): BalancingStrategy {
  let next = 0;
  return {
    name: 'round-robin',
    pick(candidates: readonly EndpointState[]): EndpointState {
      if (next >= candidates.length) next = 0;
      return candidates[next++] as EndpointState;
    },
  };
}
