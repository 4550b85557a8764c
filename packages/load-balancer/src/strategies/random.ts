import type { BalancingStrategy, EndpointState, PickContext } from '../types.ts';
import { Sampler } from './sampler.ts';

/**
 * Uniform random choice, ignoring weights and load, with the balancer's random source.
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: random(), random: seededRandom });
 * ```
 */
export function random(): BalancingStrategy {
  return {
    name: 'random',
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      return candidates[Math.floor(context.random() * candidates.length)] as EndpointState;
    },
  };
}

/** Random choice in proportion to weight (O(log n) per pick). */
export function weightedRandom(): BalancingStrategy {
  const sampler = new Sampler();
  return {
    name: 'weighted-random',
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      return candidates[sampler.one(candidates, context.random)] as EndpointState;
    },
  };
}
