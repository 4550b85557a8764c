import { durationMs, TimeDecayEwma } from '@ballast/common';
import type { BalancingStrategy, EndpointState, PickContext, PickOutcome } from '../types.ts';
import { pickOfTwo, Sampler } from './sampler.ts';

/** Options of {@link peakEwma}. */
export interface PeakEwmaOptions {
  /** Time constant of the latency average, ms: after `decayMs` an old sample keeps 1/e of its weight. @default 10_000 */
  decayMs?: number;
}

/** Cost of an endpoint with no latency sample and a request already in flight. */
const PENALTY = 1e12;

/**
 * Least response time via peak-EWMA (Finagle's): each endpoint's cost is its
 * time-decayed latency average × (in-flight + 1) / weight; two candidates are drawn
 * at random and the cheaper wins. A slower sample replaces the average at once
 * (peak-sensitive) and the average decays towards 0 while no sample arrives, so an
 * idle endpoint is tried again. An endpoint with no sample yet costs 0 until it has
 * a request in flight, then a large penalty: it gets one probe at a time until its
 * first answer arrives.
 *
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: peakEwma({ decayMs: 10_000 }) });
 * ```
 */
export function peakEwma(options: PeakEwmaOptions = {}): BalancingStrategy {
  const decayMs = durationMs('decayMs', options.decayMs ?? 10_000, { min: 1 });
  const sampler = new Sampler();
  const cost = (e: EndpointState, now: number): number => {
    const ewma = e.data as TimeDecayEwma;
    const last = ewma.lastUpdate;
    if (last === undefined) return e.inFlight === 0 ? 0 : (PENALTY + e.inFlight) / e.weight;
    const decayed = ewma.value * Math.exp(-(now - last) / decayMs);
    return (decayed * (e.inFlight + 1)) / e.weight;
  };
  const choose = (a: EndpointState, b: EndpointState, _candidates: readonly EndpointState[], context: PickContext): EndpointState =>
    cost(a, context.now) < cost(b, context.now) ? a : b;
  return {
    name: 'peak-ewma',
    onAdd(endpoint: EndpointState): void {
      endpoint.data = new TimeDecayEwma(decayMs);
    },
    pick(candidates: readonly EndpointState[], context: PickContext): EndpointState {
      return pickOfTwo(sampler, candidates, context, choose);
    },
    onDone(endpoint: EndpointState, outcome: PickOutcome): void {
      if (!outcome.cancelled) (endpoint.data as TimeDecayEwma).updatePeak(outcome.latencyMs, outcome.now);
    },
  };
}
