import { durationMs, finiteNumber, func, integer, nearestRank, oneOf, ratio, seededRandom } from '@ballast/common';
import type { FailureDetector } from './detector.ts';

/** One population of simulated nodes for {@link measureQuality}. */
export interface QualityScenario {
  /**
   * Number of nodes simulated, each for `durationMs` and then crashed.
   * @default 100
   */
  nodes?: number;
  /**
   * Mean heartbeat interval as seen by the receiver, in milliseconds.
   * @default 1000
   */
  intervalMs?: number;
  /**
   * Interval jitter as a share of `intervalMs`, standing for sender scheduling and
   * network delay variation together: each interval is drawn from `intervalMs × (1 ± jitter)`
   * (uniform, standard deviation `intervalMs × jitter / √3`), or from a lognormal
   * distribution with the same mean and deviation (see `jitterDistribution`).
   * @default 0.2
   */
  jitter?: number;
  /**
   * Probability that a heartbeat is lost, independently of the others.
   * @default 0.01
   */
  lossRate?: number;
  /**
   * How long each node runs before it crashes, in milliseconds (plus a random phase of
   * up to one interval). False suspicions are counted over this time.
   * @default 3_600_000 (one hour)
   */
  durationMs?: number;
  /**
   * How long after the crash the detector is given to suspect it, in milliseconds;
   * crashes not suspected by then count as `undetected`.
   * @default 600_000
   */
  maxDetectionMs?: number;
  /**
   * Shape of the interval jitter. `'uniform'`: each interval is drawn uniformly from
   * `intervalMs × (1 ± jitter)`, so no interval is ever longer than `1 + jitter` times the
   * mean. `'lognormal'`: intervals are lognormal with the same mean and the same standard
   * deviation (`intervalMs × jitter / √3`), so only the shape changes: skewed to the right
   * and without bound, as queueing and scheduling delays are.
   * @default 'uniform'
   */
  jitterDistribution?: 'uniform' | 'lognormal';
  /**
   * Probability that a heartbeat is held up on its way (a TCP retransmission, a GC pause,
   * a stalled event loop), independently of the others. The heartbeats after it are not
   * held up, so they may overtake it; every heartbeat that arrives counts, in arrival order.
   * @default 0
   */
  delayRate?: number;
  /**
   * Mean extra delay of a held-up heartbeat, in milliseconds (exponentially distributed).
   * @default 300
   */
  delayMs?: number;
  /**
   * Network conditions that change over time. The phases repeat in order, each node
   * starting at a random point of the cycle; a phase's `jitter`, `lossRate` and
   * `delayRate` replace the scenario's while it lasts. Without phases the conditions
   * never change.
   * @default []
   */
  phases?: readonly QualityPhase[];
  /** Seed of the random generator; equal seeds give equal runs. @default the scenario's position, from 1 */
  seed?: number;
}

/** A stretch of time with its own network conditions, in {@link QualityScenario.phases}. */
export interface QualityPhase {
  /** How long the phase lasts, ms. */
  durationMs: number;
  /** Interval jitter during the phase. @default the scenario's `jitter` */
  jitter?: number;
  /** Loss probability during the phase. @default the scenario's `lossRate` */
  lossRate?: number;
  /** Hold-up probability during the phase. @default the scenario's `delayRate` */
  delayRate?: number;
}

/** Detection time percentiles, ms; NaN when no crash was detected. */
export interface DetectionTimes {
  mean: number;
  /** Standard deviation (sample), for confidence intervals on the mean. */
  stdDev: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Quality of service of a failure detector, as defined by Chen, Toueg and Aguilera
 * ("On the quality of service of failure detectors", 2002).
 */
export interface QualityReport {
  /** Nodes simulated. */
  nodes: number;
  /** Total time nodes were up and watched, ms. */
  observedMs: number;
  /** T_D: time from a crash to the start of the suspicion that never ends, ms. */
  detectionTimeMs: DetectionTimes;
  /**
   * Each node's detection time, ms, in simulation order (NaN when undetected). Two
   * detectors measured on the same scenarios see the same heartbeats node by node, so
   * these pair up for a paired comparison.
   */
  nodeDetectionTimesMs: number[];
  /** Crashes not suspected within `maxDetectionMs`. */
  undetected: number;
  /** False suspicions of nodes that were up. */
  mistakes: number;
  /** Mistakes per node-hour of observed time (λ_M in hours). */
  mistakesPerNodeHour: number;
  /** Mistakes per node-day of observed time. */
  mistakesPerNodeDay: number;
  /** T_MR: mean time between mistakes, ms (observed time / mistakes; Infinity when none). */
  mistakeRecurrenceMs: number;
  /** T_M: mean duration of a mistake, ms (0 when none). */
  mistakeDurationMs: number;
  /** P_A: probability that a query at a random time while the node is up answers correctly. */
  queryAccuracy: number;
}

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** Precision of the suspicion start times the harness locates, ms. */
const PRECISION_MS = 1;

/**
 * Measures a failure detector on a virtual clock: simulated nodes send heartbeats
 * with jittered intervals, some lost and some held up on the way, for `durationMs`,
 * then crash. It reports how fast crashes are detected and how often, and for how long,
 * live nodes are wrongly suspected. Network conditions can change over time (`phases`);
 * pass several scenarios to simulate a mixed fleet, whose nodes are pooled.
 *
 * Queries are exact rather than periodic: the start of each suspicion is located to
 * within 1 ms, relying on suspicion never falling between heartbeats (true of every
 * built-in detector). A {@link HeartbeatMonitor} adds up to its `checkIntervalMs`.
 *
 * @param createDetector Makes a fresh detector for each node.
 * @example
 * ```ts
 * const report = measureQuality(() => new PhiAccrualDetector({ acceptableHeartbeatPauseMs: 2000 }), {
 *   nodes: 200, jitter: 0.2, lossRate: 0.01,
 * });
 * console.log(report.detectionTimeMs.p99, report.mistakesPerNodeDay);
 * ```
 * @throws {InvalidOptionError} naming the first invalid scenario option.
 */
export function measureQuality(
  createDetector: () => FailureDetector,
  scenarios: QualityScenario | readonly QualityScenario[] = {},
): QualityReport {
  func('createDetector', createDetector);
  const nodeDetections: number[] = [];
  const totals = { nodes: 0, observedMs: 0, undetected: 0, mistakes: 0, mistakeMs: 0 };
  const list: readonly QualityScenario[] = Array.isArray(scenarios) ? scenarios : [scenarios];
  list.forEach((scenario, index) => {
    simulateScenario(createDetector, scenario, index + 1, nodeDetections, totals);
  });
  const detections = nodeDetections.filter((d) => !Number.isNaN(d)).sort((a, b) => a - b);
  const { observedMs, mistakes } = totals;
  const mean = detections.length === 0 ? Number.NaN : detections.reduce((sum, d) => sum + d, 0) / detections.length;
  const squares = detections.reduce((sum, d) => sum + (d - mean) ** 2, 0);
  return {
    nodes: totals.nodes,
    observedMs,
    detectionTimeMs: {
      mean,
      stdDev: detections.length < 2 ? Number.NaN : Math.sqrt(squares / (detections.length - 1)),
      p50: nearestRank(detections, 0.5),
      p90: nearestRank(detections, 0.9),
      p99: nearestRank(detections, 0.99),
      max: detections[detections.length - 1] ?? Number.NaN,
    },
    nodeDetectionTimesMs: nodeDetections,
    undetected: totals.undetected,
    mistakes,
    mistakesPerNodeHour: (mistakes / observedMs) * HOUR_MS,
    mistakesPerNodeDay: (mistakes / observedMs) * DAY_MS,
    mistakeRecurrenceMs: mistakes === 0 ? Number.POSITIVE_INFINITY : observedMs / mistakes,
    mistakeDurationMs: mistakes === 0 ? 0 : totals.mistakeMs / mistakes,
    queryAccuracy: 1 - totals.mistakeMs / observedMs,
  };
}

/** Network conditions in force at a given time, with the interval sampler they imply. */
interface Conditions {
  lossRate: number;
  delayRate: number;
  nextInterval: () => number;
}

function simulateScenario(
  createDetector: () => FailureDetector,
  scenario: QualityScenario,
  defaultSeed: number,
  detections: number[],
  totals: { nodes: number; observedMs: number; undetected: number; mistakes: number; mistakeMs: number },
): void {
  const nodes = integer('nodes', scenario.nodes ?? 100, { min: 1 });
  const intervalMs = finiteNumber('intervalMs', scenario.intervalMs ?? 1000, { min: Number.MIN_VALUE });
  const jitter = ratio('jitter', scenario.jitter ?? 0.2, { max: 0.99 });
  const lossRate = ratio('lossRate', scenario.lossRate ?? 0.01, { max: 0.99 });
  const durationMs_ = finiteNumber('durationMs', scenario.durationMs ?? HOUR_MS, { min: intervalMs });
  const maxDetectionMs = durationMs('maxDetectionMs', scenario.maxDetectionMs ?? 600_000, { min: 1 });
  const distribution = oneOf('jitterDistribution', scenario.jitterDistribution ?? 'uniform', ['uniform', 'lognormal'] as const);
  const delayRate = ratio('delayRate', scenario.delayRate ?? 0, { max: 0.99 });
  const delayMs = durationMs('delayMs', scenario.delayMs ?? 300);
  const random = seededRandom(integer('seed', scenario.seed ?? defaultSeed));
  const conditions = (phase: QualityPhase | undefined, index: number): Conditions => {
    const name = (option: string): string => (phase === undefined ? option : `phases[${index}].${option}`);
    const phaseJitter = phase?.jitter === undefined ? jitter : ratio(name('jitter'), phase.jitter, { max: 0.99 });
    return {
      lossRate: phase?.lossRate === undefined ? lossRate : ratio(name('lossRate'), phase.lossRate, { max: 0.99 }),
      delayRate: phase?.delayRate === undefined ? delayRate : ratio(name('delayRate'), phase.delayRate, { max: 0.99 }),
      nextInterval: intervalSampler(distribution, intervalMs, phaseJitter, random),
    };
  };
  const steady = conditions(undefined, 0);
  const phases = (scenario.phases ?? []).map((phase, i) => ({
    durationMs: durationMs(`phases[${i}].durationMs`, phase?.durationMs, { min: 1 }),
    ...conditions(phase, i),
  }));
  const cycleMs = phases.reduce((sum, phase) => sum + phase.durationMs, 0);
  const conditionsAt = (at: number): Conditions => {
    let t = at % cycleMs;
    for (const phase of phases) {
      if (t < phase.durationMs) return phase;
      t -= phase.durationMs;
    }
    return phases[phases.length - 1] as Conditions;
  };

  for (let n = 0; n < nodes; n++) {
    const detector = createDetector();
    const crashAt = durationMs_ + random() * intervalMs;
    const offset = cycleMs > 0 ? random() * cycleMs : 0;
    let sendAt = random() * intervalMs;
    let first: number | undefined;
    let last: number | undefined;
    /** Arrival times of held-up heartbeats still on their way, sorted. */
    const inFlight: number[] = [];
    const arrive = (at: number): void => {
      if (last === undefined) first = at;
      // Suspected just before this heartbeat arrived: a mistake, which it ends (unless the node had crashed by then).
      else if (!detector.isAvailable(at)) {
        const start = suspicionStart(detector, last, at);
        if (start < crashAt) {
          totals.mistakes++;
          totals.mistakeMs += Math.min(at, crashAt) - start;
        }
      }
      detector.heartbeat(at);
      last = at;
    };
    let now = steady;
    for (; sendAt < crashAt; sendAt += now.nextInterval()) {
      now = cycleMs > 0 ? conditionsAt(offset + sendAt) : steady;
      while (inFlight.length > 0 && (inFlight[0] as number) <= sendAt) arrive(inFlight.shift() as number);
      if (random() < now.lossRate) continue;
      if (now.delayRate > 0 && random() < now.delayRate) {
        const arrival = sendAt - delayMs * Math.log(1 - random());
        inFlight.splice(sortedIndex(inFlight, arrival), 0, arrival);
      } else arrive(sendAt);
    }
    // Heartbeats sent before the crash may arrive after it.
    for (const arrival of inFlight) arrive(arrival);
    totals.nodes++;
    if (first === undefined || last === undefined) {
      detections.push(Number.NaN);
      continue;
    }
    totals.observedMs += crashAt - first;
    // After the last arrival suspicion only grows: find when it reaches the threshold.
    const limit = Math.max(crashAt, last) + maxDetectionMs;
    let hi = Math.max(crashAt, last + intervalMs);
    while (hi < limit && detector.isAvailable(hi)) hi = Math.min(limit, last + (hi - last) * 2);
    if (detector.isAvailable(hi)) {
      totals.undetected++;
      detections.push(Number.NaN);
      continue;
    }
    detections.push(Math.max(0, suspicionStart(detector, last, hi) - crashAt));
  }
}

/**
 * Draws heartbeat intervals: uniform on `intervalMs × (1 ± jitter)`, or lognormal with
 * the same mean and standard deviation (`intervalMs × jitter / √3`).
 */
function intervalSampler(distribution: 'uniform' | 'lognormal', intervalMs: number, jitter: number, random: () => number): () => number {
  if (distribution === 'uniform' || jitter === 0) return () => intervalMs * (1 + jitter * (2 * random() - 1));
  const variance = Math.log(1 + jitter ** 2 / 3);
  const sigma = Math.sqrt(variance);
  const mu = Math.log(intervalMs) - variance / 2;
  // Box–Muller; 1 - random() is in (0, 1], so the logarithm is finite.
  return () => Math.exp(mu + sigma * Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random()));
}

/** Where `value` goes in the ascending `sorted` to keep it sorted (after equal values). */
function sortedIndex(sorted: readonly number[], value: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] as number) <= value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The first time in (from, to] at which the detector suspects, to within PRECISION_MS; it must suspect at `to`. */
function suspicionStart(detector: FailureDetector, from: number, to: number): number {
  let lo = from;
  let hi = to;
  while (hi - lo > PRECISION_MS) {
    const mid = (lo + hi) / 2;
    if (detector.isAvailable(mid)) lo = mid;
    else hi = mid;
  }
  return hi;
}
