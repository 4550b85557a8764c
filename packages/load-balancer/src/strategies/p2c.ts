import { finiteNumber } from '@ballast/common';
import type { BalancingStrategy, EndpointState, PickContext } from '../types.ts';
import { better, pickOfTwo, Sampler } from './sampler.ts';

/** Options of {@link powerOfTwoChoices}. */
export interface PowerOfTwoChoicesOptions {
  /**
   * How strongly in-flight requests count against an endpoint when weights differ
   * (Envoy's `active_request_bias`): the lower `inFlight ^ bias / weight` wins.
   * 0 compares weights only; 1 is linear. With equal weights the fewer in-flight wins.
   * @default 1
   */
  activeRequestBias?: number;
}

/**
 * Power of two choices, least request (Envoy's default): draw two distinct candidates
 * at random (in proportion to weight when weights differ) and send to the one with
 * fewer requests in flight. O(1) per pick, and nearly as good as scanning every
 * endpoint: it avoids the herd that a full least-loaded scan sends to one endpoint.
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: powerOfTwoChoices({ activeRequestBias: 1 }) });
 * ```
 */
export function powerOfTwoChoices(options: PowerOfTwoChoicesOptions = {}): BalancingStrategy {
  const bias = finiteNumber('activeRequestBias', options.activeRequestBias ?? 1, { min: 0 });
  const sampler = new Sampler();
  const score = (e: EndpointState): number => (bias === 1 ? e.inFlight : e.inFlight ** bias) / e.weight;
  const choose = (a: EndpointState, b: EndpointState, candidates: readonly EndpointState[], context: PickContext): EndpointState => {
    // On a tie the second draw wins: it is as random as the first.
    if (sampler.uniform(candidates)) return a.inFlight < b.inFlight ? a : b;
    return better(a, score(a), a.weight, b, score(b), b.weight, context.random);
  };
  return {
    name: 'p2c',
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      return pickOfTwo(sampler, candidates, context, choose);
    },
  };
}
