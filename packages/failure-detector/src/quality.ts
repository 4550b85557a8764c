import { durationMs, finiteNumber, func, integer, ratio, seededRandom } from '@ballast/common';
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
   * Interval jitter as a share of `intervalMs`: each interval is drawn uniformly from
   * `intervalMs × (1 ± jitter)`, standing for sender scheduling and network delay
   * variation together.
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
  /** Seed of the random generator; equal seeds give equal runs. @default the scenario's position, from 1 */
  seed?: number;
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
 * with jittered intervals, some lost, for `durationMs`, then crash. It reports how
 * fast crashes are detected and how often, and for how long, live nodes are wrongly
 * suspected. Pass several scenarios to simulate a mixed fleet; their nodes are pooled.
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
  const detections: number[] = [];
  const totals = { nodes: 0, observedMs: 0, undetected: 0, mistakes: 0, mistakeMs: 0 };
  const list: readonly QualityScenario[] = Array.isArray(scenarios) ? scenarios : [scenarios];
  list.forEach((scenario, index) => {
    simulateScenario(createDetector, scenario, index + 1, detections, totals);
  });
  detections.sort((a, b) => a - b);
  const { observedMs, mistakes } = totals;
  const mean = detections.length === 0 ? Number.NaN : detections.reduce((sum, d) => sum + d, 0) / detections.length;
  const squares = detections.reduce((sum, d) => sum + (d - mean) ** 2, 0);
  return {
    nodes: totals.nodes,
    observedMs,
    detectionTimeMs: {
      mean,
      stdDev: detections.length < 2 ? Number.NaN : Math.sqrt(squares / (detections.length - 1)),
      p50: quantile(detections, 0.5),
      p90: quantile(detections, 0.9),
      p99: quantile(detections, 0.99),
      max: detections[detections.length - 1] ?? Number.NaN,
    },
    undetected: totals.undetected,
    mistakes,
    mistakesPerNodeHour: (mistakes / observedMs) * HOUR_MS,
    mistakesPerNodeDay: (mistakes / observedMs) * DAY_MS,
    mistakeRecurrenceMs: mistakes === 0 ? Number.POSITIVE_INFINITY : observedMs / mistakes,
    mistakeDurationMs: mistakes === 0 ? 0 : totals.mistakeMs / mistakes,
    queryAccuracy: 1 - totals.mistakeMs / observedMs,
  };
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
  const random = seededRandom(integer('seed', scenario.seed ?? defaultSeed));

  for (let n = 0; n < nodes; n++) {
    const detector = createDetector();
    const crashAt = durationMs_ + random() * intervalMs;
    let sendAt = random() * intervalMs;
    let first: number | undefined;
    let last: number | undefined;
    for (; sendAt < crashAt; sendAt += intervalMs * (1 + jitter * (2 * random() - 1))) {
      if (random() < lossRate) continue;
      if (last === undefined) first = sendAt;
      // Suspected just before this heartbeat arrived: a mistake, which it ends.
      else if (!detector.isAvailable(sendAt)) {
        totals.mistakes++;
        totals.mistakeMs += sendAt - suspicionStart(detector, last, sendAt);
      }
      detector.heartbeat(sendAt);
      last = sendAt;
    }
    totals.nodes++;
    if (first === undefined || last === undefined) continue;
    totals.observedMs += crashAt - first;
    // After the crash suspicion only grows: find when it reaches the threshold.
    const limit = crashAt + maxDetectionMs;
    let hi = Math.max(crashAt, last + intervalMs);
    while (hi < limit && detector.isAvailable(hi)) hi = Math.min(limit, last + (hi - last) * 2);
    if (detector.isAvailable(hi)) {
      totals.undetected++;
      continue;
    }
    detections.push(Math.max(0, suspicionStart(detector, last, hi) - crashAt));
  }
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

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}
