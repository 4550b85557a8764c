/**
 * The shape of `benchmarks/results/balancing.json`: the simulation and the live
 * comparison, each with the settings that produced it, so the report can be rebuilt
 * from the JSON alone.
 */
import type { SimScenarioResult } from './sim/run-sim.ts';
import type { Interval } from './stats.ts';

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
    /** Simulated clients give up after this long, ms (absent in results from before the timeout existed). */
    clientTimeoutMs?: number;
    utilisations: number[];
    balancerOptions: unknown;
  };
  strategies: Array<{ id: string; label: string }>;
  wallSeconds: number;
  scenarios: SimScenarioResult[];
}

/** The live balancer kinds: Ballast's proxy, the Node proxies users know, and the C proxies. */
export type LiveKind = 'ballast' | 'node-peer' | 'nginx' | 'haproxy' | 'reference';

/** One run of one balancer in a live scenario. */
export interface LiveSample {
  /** Position of the run in its repetition round, for checking the interleaving. */
  round: number;
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
  /** CPU seconds the balancer process used in the measured part of the run. */
  cpuSeconds: number;
  requestsPerCpuSecond: number;
  /** p99 event-loop delay of the load generator during the run, ms: high when the machine was busy. */
  generatorLagP99Ms: number;
}

/** One balancer configuration over every repetition of a live scenario. */
export interface LiveRun {
  /** Balancer label, e.g. `Ballast P2C`, `nginx least_conn`. */
  balancer: string;
  kind: LiveKind;
  /** Strategy id for Ballast runs. */
  strategy: string | null;
  /** Median over the samples with its confidence interval. */
  p50: Interval;
  p99: Interval;
  p999: Interval;
  errorRate: Interval;
  requestsPerCpuSecond: Interval;
  /** Medians of each percentile (for charts). */
  latency: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** Median share per backend. */
  share: number[];
  samples: LiveSample[];
}

export interface LiveScenarioResult {
  name: string;
  title: string;
  description: string;
  servers: string[];
  watch: number | null;
  /** Length of each run, warm-up included, ms. */
  durationMs: number;
  ratePerSec: number;
  runs: LiveRun[];
}

/** One repetition of the proxy-cost measurement for one proxy. */
export interface ProxyCostSample {
  round: number;
  /** Closed loop (wrk): requests completed, per second of wall time and per CPU-second of the proxy process. */
  requests: number;
  requestsPerSecond: number;
  cpuSeconds: number;
  requestsPerCpuSecond: number;
  /** Open loop aimed at half the proxy's capacity, capped: the rate achieved, requests per second each way (through the proxy and direct). */
  latencyRatePerSec: number;
  /** Half the proxy's capacity (the lower of requests per CPU-second and per second, halved): the rate aimed at before the cap. */
  halfCapacityPerSec?: number;
  /** Latency through the proxy and calling the backends directly, at the same rate, ms. */
  proxied: { p50: number; p99: number };
  direct: { p50: number; p99: number };
  /** Proxied − direct, µs. */
  addedP50Us: number;
  addedP99Us: number;
  errors: number;
}

export interface ProxyCostRun {
  proxy: string;
  kind: LiveKind;
  requestsPerCpuSecond: Interval;
  requestsPerSecond: Interval;
  addedP50Us: Interval;
  addedP99Us: Interval;
  latencyRatePerSec: Interval;
  samples: ProxyCostSample[];
}

export interface ProxyCostResults {
  settings: { backends: number; connections: number; closedLoopMs: number; latencyMs: number; latencyRateCapPerSec: number };
  runs: ProxyCostRun[];
}

export interface LiveResults {
  /** 2: repeated, interleaved runs with medians and intervals, and the proxy-cost section. */
  format: 2;
  command: string;
  machine: Machine;
  settings: {
    repeats: number;
    /** Confidence the intervals aim for (the widest, min–max, is used when fewer samples cannot reach it). */
    confidenceLevel: number;
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
  proxyCost: ProxyCostResults | null;
  scenarios: LiveScenarioResult[];
}

export interface BalancingResults {
  simulation: SimulationResults | null;
  /** Live results; an older format (no `format` field) is kept but not rendered. */
  live: LiveResults | null;
}

/**
 * `previous` with the halves in `part` replaced: the simulation and the live run each
 * write their own half and keep the other's.
 */
export function replacePart(previous: BalancingResults, part: Partial<BalancingResults>): BalancingResults {
  return {
    simulation: part.simulation !== undefined ? part.simulation : previous.simulation,
    live: part.live !== undefined ? part.live : previous.live,
  };
}
