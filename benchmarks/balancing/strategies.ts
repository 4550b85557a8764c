/**
 * The strategies under comparison, all from @ballast/load-balancer with their default
 * options, each built fresh per run (a strategy instance serves one balancer). Used by
 * the simulation and by the live gateway, so both compare exactly the same code.
 */
import {
  dynamic,
  hashAffinity,
  leastConnections,
  peakEwma,
  powerOfTwoChoices,
  random,
  roundRobin,
  type Strategy,
  weightedRandom,
  weightedRoundRobin,
} from '@ballast/load-balancer';

export interface StrategyEntry {
  /** Stable id used in JSON and file names. */
  id: string;
  /** Label in tables and charts. */
  label: string;
  make(): Strategy;
}

export const strategies: StrategyEntry[] = [
  { id: 'round-robin', label: 'round robin', make: () => roundRobin() },
  { id: 'weighted-round-robin', label: 'weighted round robin', make: () => weightedRoundRobin() },
  { id: 'random', label: 'random', make: () => random() },
  { id: 'weighted-random', label: 'weighted random', make: () => weightedRandom() },
  { id: 'least-connections', label: 'least connections', make: () => leastConnections() },
  { id: 'p2c', label: 'P2C', make: () => powerOfTwoChoices() },
  { id: 'peak-ewma', label: 'peak EWMA', make: () => peakEwma() },
  { id: 'hash-ring', label: 'hash (ring)', make: () => hashAffinity({ partitioner: 'ring' }) },
  { id: 'hash-maglev', label: 'hash (maglev)', make: () => hashAffinity({ partitioner: 'maglev' }) },
  { id: 'hash-bounded', label: 'hash (bounded load)', make: () => hashAffinity({ partitioner: 'bounded-load' }) },
  { id: 'dynamic', label: 'dynamic', make: () => dynamic() },
];
