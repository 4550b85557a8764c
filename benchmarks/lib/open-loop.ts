/**
 * An open-loop load generator: requests start on a fixed schedule (constant rate,
 * or Poisson arrivals) whether or not earlier ones have finished, and each latency
 * is measured from the moment the request was *scheduled*, not sent. A stalled
 * server therefore shows up in the percentiles instead of silently slowing the
 * generator down (no coordinated omission).
 *
 * Bounded by design: it stops after `durationMs` and never has more than
 * `maxInFlight` requests outstanding (excess arrivals are counted as `dropped`).
 */
import { Histogram, type HistogramSummary } from '@ballast/common';

export interface OpenLoopOptions {
  /** Arrivals per second. */
  ratePerSec: number;
  /** How long to generate load. */
  durationMs: number;
  /** `constant` spacing or `poisson` (exponential inter-arrival times). @default 'constant' */
  arrivals?: 'constant' | 'poisson';
  /** Cap on outstanding requests; arrivals beyond it are dropped and counted. @default 10_000 */
  maxInFlight?: number;
  /** Random source for Poisson arrivals. @default Math.random */
  random?: () => number;
  /** Ignore results from the first `warmupMs`. @default 0 */
  warmupMs?: number;
}

/** What one request reports back; `status` is an HTTP status or any label. */
export interface Outcome {
  status: number | string;
  /** Optional label, e.g. which upstream served it. */
  server?: string;
}

export interface OpenLoopResult {
  sent: number;
  completed: number;
  dropped: number;
  /** Requests that threw (connection refused, reset, timeout). */
  failed: number;
  durationMs: number;
  /** Completed requests per second. */
  throughput: number;
  /** Latency of every completed request, ms. */
  latency: HistogramSummary;
  /** Latency per status. */
  byStatus: Record<string, { count: number; latency: HistogramSummary }>;
  /** Completed requests per server label. */
  byServer: Record<string, number>;
  /** Raw histograms, for merging and custom percentiles. */
  histograms: { all: Histogram; byStatus: Map<string, Histogram> };
}

/** Runs `send` on an open-loop schedule and returns the latency distribution. */
export async function openLoop(
  send: (i: number, signal: AbortSignal) => Promise<Outcome>,
  options: OpenLoopOptions,
): Promise<OpenLoopResult> {
  const { ratePerSec, durationMs } = options;
  if (!(ratePerSec > 0)) throw new RangeError(`ratePerSec must be > 0, got ${ratePerSec}`);
  if (!(durationMs > 0)) throw new RangeError(`durationMs must be > 0, got ${durationMs}`);
  const maxInFlight = options.maxInFlight ?? 10_000;
  const random = options.random ?? Math.random;
  const warmupMs = options.warmupMs ?? 0;
  const interval = 1000 / ratePerSec;
  const all = new Histogram();
  const byStatus = new Map<string, Histogram>();
  const byServer: Record<string, number> = {};
  const controller = new AbortController();
  let sent = 0;
  let completed = 0;
  let dropped = 0;
  let failed = 0;
  let inFlight = 0;
  const pending = new Set<Promise<void>>();
  const start = performance.now();
  let nextAt = 0;

  const fire = (i: number, scheduledAt: number): void => {
    if (inFlight >= maxInFlight) {
      dropped++;
      return;
    }
    inFlight++;
    sent++;
    const counted = scheduledAt >= warmupMs;
    const p = send(i, controller.signal).then(
      (outcome) => {
        const latency = performance.now() - start - scheduledAt;
        if (!counted) return;
        completed++;
        all.record(latency);
        const key = String(outcome.status);
        let h = byStatus.get(key);
        if (!h) byStatus.set(key, (h = new Histogram()));
        h.record(latency);
        if (outcome.server !== undefined) byServer[outcome.server] = (byServer[outcome.server] ?? 0) + 1;
      },
      () => {
        if (counted) failed++;
      },
    );
    const tracked = p.finally(() => {
      inFlight--;
      pending.delete(tracked);
    });
    pending.add(tracked);
  };

  let i = 0;
  while (true) {
    const now = performance.now() - start;
    if (nextAt >= durationMs) break;
    // Fire every arrival whose time has come; catch up after a slow tick.
    while (nextAt <= now && nextAt < durationMs) {
      fire(i++, nextAt);
      nextAt += options.arrivals === 'poisson' ? -Math.log(1 - random()) * interval : interval;
    }
    const wait = nextAt - (performance.now() - start);
    await new Promise<void>((resolve) => (wait > 1 ? setTimeout(resolve, Math.min(wait, 50)) : setImmediate(resolve)));
  }
  // Let stragglers finish, bounded: abort anything still running after 30 s.
  const timer = setTimeout(() => controller.abort(new Error('load generator finished')), 30_000);
  await Promise.allSettled([...pending]);
  clearTimeout(timer);
  const elapsed = Math.max(1, durationMs - warmupMs);
  const statusSummary: OpenLoopResult['byStatus'] = {};
  for (const [key, h] of byStatus) statusSummary[key] = { count: h.count, latency: h.summary() };
  return {
    sent,
    completed,
    dropped,
    failed,
    durationMs,
    throughput: (completed / elapsed) * 1000,
    latency: all.summary(),
    byStatus: statusSummary,
    byServer,
    histograms: { all, byStatus },
  };
}
