import type { BalancingStrategy, EndpointState } from '../types.ts';

/** Per-endpoint state of a smooth weighted rotation. */
export class SmoothWeight {
  /** nginx's `current_weight`. */
  current = 0;
  /** The weight the rotation uses (configured, or computed by `dynamic()`). */
  weight: number;
  constructor(weight: number) {
    this.weight = weight;
  }
}

/**
 * nginx's smooth weighted round robin over `candidates`, whose `data` is a
 * {@link SmoothWeight}: every candidate gains its weight, the largest current weight
 * wins and pays the total back. Heavy endpoints are interleaved, not sent in bursts.
 */
export function smoothPick(candidates: readonly EndpointState[]): EndpointState {
  let best: EndpointState | undefined;
  let bestState: SmoothWeight | undefined;
  let total = 0;
  for (let i = 0; i < candidates.length; i++) {
    const e = candidates[i] as EndpointState;
    const s = e.data as SmoothWeight;
    s.current += s.weight;
    total += s.weight;
    if (bestState === undefined || s.current > bestState.current) {
      best = e;
      bestState = s;
    }
  }
  (bestState as SmoothWeight).current -= total;
  return best as EndpointState;
}

/**
 * Weighted round robin producing exactly nginx's smooth sequence: weights 5, 1, 1
 * give `a a b a c a a`, repeating.
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints: [{ id: 'a', address, weight: 5 }, …], strategy: weightedRoundRobin() });
 * ```
 */
export function weightedRoundRobin(): BalancingStrategy {
  let synced: readonly EndpointState[] | undefined;
  return {
    name: 'weighted-round-robin',
    onAdd(endpoint: EndpointState): void {
      endpoint.data = new SmoothWeight(endpoint.weight);
    },
    pick(candidates: readonly EndpointState[]): EndpointState {
      // A new candidate array means membership or a weight changed.
      if (candidates !== synced) {
        synced = candidates;
        for (const e of candidates) (e.data as SmoothWeight).weight = e.weight;
      }
      return smoothPick(candidates);
    },
  };
}
