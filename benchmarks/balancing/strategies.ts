/**
 * The strategies under comparison, all from @ballast/load-balancer with their default
 * options, each built fresh per run (a strategy instance serves one balancer). Used by
 * the simulation and by the live gateway, so both compare exactly the same code.
 */
import { type Strategy, strategyByName } from '@ballast/load-balancer';

export interface StrategyEntry {
  /** Stable id used in JSON and file names. */
  id: string;
  /** Label in tables and charts. */
  label: string;
  make(): Strategy;
}

export const strategies: StrategyEntry[] = [
  { id: 'round-robin', label: 'round robin', make: () => strategyByName('round-robin') },
  { id: 'weighted-round-robin', label: 'weighted round robin', make: () => strategyByName('weighted-round-robin') },
  { id: 'random', label: 'random', make: () => strategyByName('random') },
  { id: 'weighted-random', label: 'weighted random', make: () => strategyByName('weighted-random') },
  { id: 'least-connections', label: 'least connections', make: () => strategyByName('least-connections') },
  { id: 'p2c', label: 'P2C', make: () => strategyByName('p2c') },
  { id: 'peak-ewma', label: 'peak EWMA', make: () => strategyByName('peak-ewma') },
  { id: 'hash-ring', label: 'hash (ring)', make: () => strategyByName('hash-ring') },
  { id: 'hash-maglev', label: 'hash (maglev)', make: () => strategyByName('hash-maglev') },
  { id: 'hash-bounded', label: 'hash (bounded load)', make: () => strategyByName('hash-bounded-load') },
  { id: 'dynamic', label: 'dynamic', make: () => strategyByName('dynamic') },
];
