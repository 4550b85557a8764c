/**
 * The shape of `benchmarks/results/balancing.json`: the simulation and the live
 * comparison, each with the settings that produced it, so the report can be rebuilt
 * from the JSON alone.
 */
import type { SimScenarioResult } from './sim/run-sim.ts';

export interface Machine {
  node: string;
  cpus: number;
  cpuModel: string;
  date: string;
}

export interface SimulationResults {
  command: string;
  machine: Machine;
  settings: {
    seed: number;
    durationMs: number;
    warmupMs: number;
    utilisations: number[];
    balancerOptions: unknown;
  };
  strategies: Array<{ id: string; label: string }>;
  wallSeconds: number;
  scenarios: SimScenarioResult[];
}

export interface LiveRun {
  /** Balancer label, e.g. `Ballast P2C`, `nginx least_conn`. */
  balancer: string;
  kind: 'ballast' | 'nginx' | 'haproxy';
  /** Strategy id for Ballast runs. */
  strategy: string | null;
  /** Runs made; the least disturbed one (lowest load-generator lag) is reported. */
  attempts: number;
  ratePerSec: number;
  sent: number;
  completed: number;
  /** Requests that threw, answered non-2xx, or timed out. */
  errors: number;
  timeouts: number;
  errorRate: number;
  throughput: number;
  /** Latency of every answered or timed-out request, ms, from its scheduled send time. */
  latency: { p50: number; p90: number; p99: number; p999: number; max: number };
  share: number[];
  /** CPU seconds the balancer process used during the run, and requests served per CPU second. */
  cpuSeconds: number;
  requestsPerCpuSecond: number;
  /** p99 event-loop delay of the load generator during the run, ms: high when the machine was busy. */
  generatorLagP99Ms: number;
}

export interface LiveScenarioResult {
  name: string;
  title: string;
  description: string;
  servers: string[];
  watch: number | null;
  /** Length of each run, warm-up included, ms. */
  durationMs: number;
  runs: LiveRun[];
}

export interface LiveResults {
  command: string;
  machine: Machine;
  settings: {
    /** When a run is repeated: load-generator lag above `lagP99Ms`, within the two caps. */
    quiet: { lagP99Ms: number; attemptsPerBalancer: number; retriesPerScenario: number };
    warmupMs: number;
    timeoutMs: number;
    utilisation: number;
    concurrency: number;
    meanMs: number;
    arrivals: 'poisson' | 'constant';
    versions: Record<string, string>;
  };
  /** One-minute load average of the machine before and after the run: other work competes for the same cores. */
  loadAverage: { before: number; after: number };
  wallSeconds: number;
  scenarios: LiveScenarioResult[];
}

export interface BalancingResults {
  simulation: SimulationResults | null;
  live: LiveResults | null;
}
