/**
 * The workloads every strategy is run against. Each scenario is a set of servers (a
 * service-time distribution, a concurrency capacity, optional faults) and an arrival
 * process; utilisation is the offered load as a share of the servers' nominal capacity
 * (sum of concurrency / mean service time, after any slowdown), so "80%" means the same
 * thing everywhere.
 */
import { type Distribution, exponential, pareto, scaled } from './random.ts';

export interface ServerSpec {
  id: string;
  /** Requests served at once; further requests wait in a FIFO queue (unbounded, no client timeout). */
  concurrency: number;
  /** Weight handed to the balancer (used by weighted strategies only). */
  weight: number;
  service: Distribution;
  /** Share of requests this server fails, answering after `failMs` instead of serving. */
  failureRate?: number;
  failMs?: number;
  /** Periodic full stalls (GC-like pauses): no request progresses while stalled. */
  stalls?: { periodMs: number; durationMs: number; offsetMs: number };
  /** Crash window as shares of the run: in-flight requests fail, new ones are refused until it returns empty. */
  outage?: { fromShare: number; toShare: number };
  /** From this share of the run on, every request takes `factor` × longer. */
  slowdown?: { atShare: number; factor: number };
  /** LRU of recently seen keys: a hit costs `hitFactor` × the usual service time. */
  cache?: { size: number; hitFactor: number };
}

export interface Scenario {
  name: string;
  title: string;
  /** What the scenario models and which strategy behaviour it exposes. */
  description: string;
  servers: ServerSpec[];
  arrivals: 'poisson' | 'bursty';
  /** Requests carry a key drawn uniformly from this many keys (hash affinity routes on it). */
  keySpace: number;
  /** The server whose share is charted and whose changes are timed. */
  watch?: number;
}

const SERVERS = 10;
const CONCURRENCY = 4;
const MEAN_MS = 10;
const KEYS = 2000;

function servers(make: (i: number) => Partial<ServerSpec>): ServerSpec[] {
  return Array.from({ length: SERVERS }, (_, i) => ({
    id: `s${i}`,
    concurrency: CONCURRENCY,
    weight: 1,
    service: exponential(MEAN_MS),
    ...make(i),
  }));
}

const HETEROGENEOUS = [1, 1, 2, 2, 4, 4, 8, 8, 16, 16];

export const scenarios: Scenario[] = [
  {
    name: 'homogeneous',
    title: 'Homogeneous servers',
    description: `${SERVERS} identical servers, ${CONCURRENCY} concurrent requests each, exponential service times (mean ${MEAN_MS} ms), Poisson arrivals.`,
    servers: servers(() => ({})),
    arrivals: 'poisson',
    keySpace: KEYS,
  },
  {
    name: 'heterogeneous',
    title: 'Heterogeneous capacities, matching weights',
    description: `Concurrency ${HETEROGENEOUS.join(', ')} (a 16× spread); each server's weight equals its capacity. Unweighted strategies ignore the weights.`,
    servers: servers((i) => ({ concurrency: HETEROGENEOUS[i]!, weight: HETEROGENEOUS[i]! })),
    arrivals: 'poisson',
    keySpace: KEYS,
    watch: 0,
  },
  {
    name: 'slow-server',
    title: 'One server 5× slower',
    description: `Server s0 takes 5× longer per request (mean ${5 * MEAN_MS} ms) with the same weight as the others: the balancer has to notice.`,
    servers: servers((i) => (i === 0 ? { service: scaled(exponential(MEAN_MS), 5) } : {})),
    arrivals: 'poisson',
    keySpace: KEYS,
    watch: 0,
  },
  {
    name: 'slowdown',
    title: 'One server becomes 5× slower',
    description:
      'Server s0 turns 5× slower at 40% of the run (a noisy neighbour, a failing disk). Utilisation is relative to the capacity after the change. Time to adapt: until s0 gets under half its fair share for 5 windows of 100 ms in a row.',
    servers: servers((i) => (i === 0 ? { slowdown: { atShare: 0.4, factor: 5 } } : {})),
    arrivals: 'poisson',
    keySpace: KEYS,
    watch: 0,
  },
  {
    name: 'stalls',
    title: 'Periodic stalls on one server',
    description: 'Server s0 freezes for 250 ms every 2.5 s (a stop-the-world GC pause); requests on it wait out the pause.',
    servers: servers((i) => (i === 0 ? { stalls: { periodMs: 2500, durationMs: 250, offsetMs: 1000 } } : {})),
    arrivals: 'poisson',
    keySpace: KEYS,
    watch: 0,
  },
  {
    name: 'failing-server',
    title: 'One server failing half its requests',
    description:
      'Server s0 answers half its requests with an error after 1 ms. Fast failures make it look idle to load-based strategies (the black-hole effect) unless outlier detection ejects it.',
    servers: servers((i) => (i === 0 ? { failureRate: 0.5, failMs: 1 } : {})),
    arrivals: 'poisson',
    keySpace: KEYS,
    watch: 0,
  },
  {
    name: 'crash-return',
    title: 'A server crashes and returns',
    description:
      'Server s0 crashes at 40% of the run (in-flight requests fail, new connections are refused) and comes back empty at 70%. Time to adapt: until errors fall under 1% per 100 ms window after the crash, and until s0 gets half its fair share back after the return.',
    servers: servers((i) => (i === 0 ? { outage: { fromShare: 0.4, toShare: 0.7 } } : {})),
    arrivals: 'poisson',
    keySpace: KEYS,
    watch: 0,
  },
  {
    name: 'bursty',
    title: 'Bursty arrivals',
    description:
      'Arrivals alternate between bursts at 2× the mean rate (exponential length, mean 200 ms) and calm at ⅔× (mean 600 ms); the average rate matches the utilisation.',
    servers: servers(() => ({})),
    arrivals: 'bursty',
    keySpace: KEYS,
  },
  {
    name: 'heavy-tail',
    title: 'Heavy-tailed (Pareto) service times',
    description: `Service times are Pareto with α 1.5 (mean ${MEAN_MS} ms, infinite variance): a few requests hold a slot for a long time, so queueing behind them is what hurts.`,
    servers: servers(() => ({ service: pareto(MEAN_MS, 1.5) })),
    arrivals: 'poisson',
    keySpace: KEYS,
  },
  {
    name: 'cache-affinity',
    title: 'Cache affinity',
    description: `Each server keeps an LRU of its last 300 keys out of ${KEYS}; a hit costs 0.1× the usual service time. Routing a key to the same server keeps it cached. Utilisation is relative to the all-miss capacity.`,
    servers: servers(() => ({ cache: { size: 300, hitFactor: 0.1 } })),
    arrivals: 'poisson',
    keySpace: KEYS,
  },
];

/** Offered load in requests per ms for a utilisation (0–1): a share of nominal capacity. */
export function arrivalRatePerMs(scenario: Scenario, utilisation: number): number {
  let capacity = 0;
  for (const s of scenario.servers) capacity += s.concurrency / (s.service.mean * (s.slowdown?.factor ?? 1));
  return utilisation * capacity;
}
