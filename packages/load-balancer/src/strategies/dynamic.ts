import { durationMs, finiteNumber, func } from '@ballast/common';
import type { BalancingStrategy, Endpoint, EndpointState, PickContext } from '../types.ts';
import { better, pickOfTwo, Sampler } from './sampler.ts';

/** Per-endpoint state: the weight computed at the last recomputation. */
class DynamicWeight {
  weight: number;
  constructor(weight: number) {
    this.weight = weight;
  }
}

/** Options of {@link dynamic}. */
export interface DynamicOptions {
  /** How often weights are recomputed from the live signals, ms (on the next pick; no timer). @default 1_000 */
  intervalMs?: number;
  /**
   * Reads an endpoint's load (0–1 utilisation) at each recomputation, e.g. from a
   * metrics cache. When it returns `undefined` (or is absent) the load last reported
   * through `done({ load })` is used. It must not throw: an error propagates from `pick()`.
   */
  load?: (endpoint: Endpoint) => number | undefined;
  /** Exponent on `1 - load`; 0 ignores load. @default 1 */
  loadSensitivity?: number;
  /** Exponent on `1 - errorRate`; 0 ignores errors. @default 1 */
  errorSensitivity?: number;
  /** Exponent on `fastest latency / latency`; 0 ignores latency. @default 1 */
  latencySensitivity?: number;
  /** Floor of a computed weight, percent of the configured weight, so every endpoint keeps a trickle of traffic to prove it recovered. @default 5 */
  minWeightPercent?: number;
}

/** A {@link dynamic} strategy, which can show the weights it computed. */
export interface DynamicStrategy extends BalancingStrategy {
  /** Weights computed at the last recomputation, by endpoint id. */
  weights(): Map<string, number>;
}

/**
 * Dynamic weights: every `intervalMs` each endpoint's weight becomes
 * `weight × (1 − load)^a × (1 − errorRate)^b × (fastestLatency / latency)^c`
 * (never below `minWeightPercent`), from the load it reports (an `x-ballast-load`
 * response header, `done({ load })`, or the `load` callback), its error rate and its
 * latency average. Between recomputations each request draws two endpoints in
 * proportion to those weights and goes to the one with fewer requests in flight per
 * unit of weight, so a queue building up is seen at once, not at the next interval.
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: dynamic({ intervalMs: 500 }) });
 * ```
 */
export function dynamic(options: DynamicOptions = {}): DynamicStrategy {
  const intervalMs = durationMs('intervalMs', options.intervalMs ?? 1_000);
  const readLoad = options.load === undefined ? undefined : func<(endpoint: Endpoint) => number | undefined>('load', options.load);
  const loadExp = finiteNumber('loadSensitivity', options.loadSensitivity ?? 1, { min: 0 });
  const errorExp = finiteNumber('errorSensitivity', options.errorSensitivity ?? 1, { min: 0 });
  const latencyExp = finiteNumber('latencySensitivity', options.latencySensitivity ?? 1, { min: 0 });
  const minWeight = finiteNumber('minWeightPercent', options.minWeightPercent ?? 5, { min: 0, max: 100 }) / 100;
  let synced: readonly EndpointState[] | undefined;
  let computedAt = Number.NEGATIVE_INFINITY;
  const computed = new Map<string, number>();
  const weightOf = (e: EndpointState): number => (e.data as DynamicWeight).weight;
  const sampler = new Sampler(weightOf);

  const recompute = (candidates: readonly EndpointState[], now: number): void => {
    let fastest = Number.POSITIVE_INFINITY;
    for (const e of candidates) if (e.latencyMs > 0 && e.latencyMs < fastest) fastest = e.latencyMs;
    computed.clear();
    for (const e of candidates) {
      const load = readLoad?.(e.endpoint) ?? e.load;
      const loadFactor = load === undefined || !Number.isFinite(load) ? 1 : (1 - Math.min(1, Math.max(0, load))) ** loadExp;
      const errorFactor = (1 - e.errorRate(now)) ** errorExp;
      const latencyFactor = e.latencyMs > 0 && fastest < Number.POSITIVE_INFINITY ? (fastest / e.latencyMs) ** latencyExp : 1;
      const weight = e.weight * Math.max(minWeight, loadFactor * errorFactor * latencyFactor);
      (e.data as DynamicWeight).weight = weight;
      computed.set(e.id, weight);
    }
  };

  const choose = (a: EndpointState, b: EndpointState, _candidates: readonly EndpointState[], context: PickContext): EndpointState => {
    const wa = weightOf(a);
    const wb = weightOf(b);
    return better(a, a.inFlight / wa, wa, b, b.inFlight / wb, wb, context.random);
  };

  return {
    name: 'dynamic',
    onAdd(endpoint: EndpointState): void {
      endpoint.data = new DynamicWeight(endpoint.weight);
    },
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      if (candidates !== synced || context.now - computedAt >= intervalMs) {
        synced = candidates;
        computedAt = context.now;
        recompute(candidates, context.now);
        sampler.invalidate();
      }
      return pickOfTwo(sampler, candidates, context, choose);
    },
    weights(): Map<string, number> {
      return new Map(computed);
    },
  };
}
