import { oneOf } from '@ballast/common';
import type { BalancingStrategy } from '../types.ts';
import { dynamic } from './dynamic.ts';
import { hashAffinity } from './hash-affinity.ts';
import { leastConnections } from './least-connections.ts';
import { powerOfTwoChoices } from './p2c.ts';
import { peakEwma } from './peak-ewma.ts';
import { random, weightedRandom } from './random.ts';
import { roundRobin } from './round-robin.ts';
import { weightedRoundRobin } from './weighted-round-robin.ts';

/** The name of a built-in strategy, as configuration and `strategy.name` spell it. */
export type StrategyName =
  | 'round-robin'
  | 'weighted-round-robin'
  | 'random'
  | 'weighted-random'
  | 'least-connections'
  | 'p2c'
  | 'peak-ewma'
  | 'dynamic'
  | 'hash-ring'
  | 'hash-maglev'
  | 'hash-bounded-load';

/** Every built-in strategy at its defaults, by the `name` it reports. */
const FACTORIES: Record<StrategyName, () => BalancingStrategy> = {
  'round-robin': roundRobin,
  'weighted-round-robin': weightedRoundRobin,
  random,
  'weighted-random': weightedRandom,
  'least-connections': leastConnections,
  p2c: () => powerOfTwoChoices(),
  'peak-ewma': () => peakEwma(),
  dynamic: () => dynamic(),
  'hash-ring': () => hashAffinity({ partitioner: 'ring' }),
  'hash-maglev': () => hashAffinity({ partitioner: 'maglev' }),
  'hash-bounded-load': () => hashAffinity({ partitioner: 'bounded-load' }),
};

/** Names of every built-in strategy, in the order the README lists them. */
export const STRATEGY_NAMES: readonly StrategyName[] = Object.keys(FACTORIES) as StrategyName[];

/**
 * A new built-in strategy, at its default options, from its name: for choosing the
 * strategy in configuration (`BALANCER_STRATEGY=peak-ewma`).
 *
 * @throws InvalidOptionError naming `strategy` and listing the valid names.
 * @example
 * ```ts
 * new LoadBalancer({ endpoints, strategy: strategyByName(process.env.STRATEGY ?? 'p2c') });
 * ```
 */
export function strategyByName(name: string): BalancingStrategy {
  return FACTORIES[oneOf('strategy', name, STRATEGY_NAMES)]();
}
