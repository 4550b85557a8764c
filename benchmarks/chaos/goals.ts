/** The goals `npm run chaos` prints, and the verdict of a run against them. */
import type { ChaosResult } from '@ballast/app-system';

/** The goals of the design (issue: the distributed mode under faults). */
export const GOALS = {
  /** Yield over the whole run, counting 5xx and timeouts as failures. */
  yield: 0.999,
  /** p99 outside the seconds around a Redis failover, ms. */
  p99Ms: 500,
  /** Detection of a dead API server (by the gateway), ms. */
  apiDetectMs: 2000,
  /** Detection of a dead worker (by the other members), ms. */
  workerDetectMs: 3000,
} as const;

/** A row per goal: target, measured, verdict. */
export function goals(
  r: Pick<ChaosResult, 'totals' | 'quiet' | 'p99OutsideFailover' | 'faults' | 'invariants' | 'durationMs'>,
): Array<Record<string, string>> {
  const pct = (v: number): string => `${(v * 100).toFixed(3)}%`;
  const verdict = (met: boolean): string => (met ? 'met' : '**not met**');
  const detect = (prefix: string): number[] =>
    r.faults.filter((f) => f.kind.endsWith(prefix) && f.kind.startsWith('kill-')).map((f) => f.detectedMs ?? Number.POSITIVE_INFINITY);
  const api = detect('-api');
  const worker = detect('-worker');
  const show = (list: number[]): string =>
    list.length ? list.map((v) => (Number.isFinite(v) ? `${(v / 1000).toFixed(2)} s` : 'not seen')).join(', ') : 'no such fault';
  const inv = r.invariants;
  const redis = r.faults.filter((f) => f.kind.endsWith('-redis-primary'));
  return [
    {
      goal: `yield ≥ ${pct(GOALS.yield)} with faults`,
      measured: `${pct(r.totals.yield)} (${r.totals.failed} of ${r.totals.ok + r.totals.failed} failed)`,
      verdict: verdict(r.totals.yield >= GOALS.yield),
    },
    {
      goal: 'yield without faults (seconds outside every fault window)',
      measured: `${pct(r.quiet.yield)} over ${r.quiet.seconds} s`,
      verdict: verdict(r.quiet.yield >= GOALS.yield),
    },
    {
      goal: `p99 < ${GOALS.p99Ms} ms outside Redis failovers`,
      measured: `${Math.round(r.p99OutsideFailover)} ms (whole run ${Math.round(r.totals.p99)} ms; outside every fault ${Math.round(r.quiet.p99)} ms)`,
      verdict: verdict(r.p99OutsideFailover < GOALS.p99Ms),
    },
    {
      goal: `dead API server detected ≤ ${GOALS.apiDetectMs / 1000} s`,
      measured: show(api),
      verdict: api.length ? verdict(api.every((v) => v <= GOALS.apiDetectMs)) : '—',
    },
    {
      goal: `dead worker detected ≤ ${GOALS.workerDetectMs / 1000} s`,
      measured: show(worker),
      verdict: worker.length ? verdict(worker.every((v) => v <= GOALS.workerDetectMs)) : '—',
    },
    { goal: '0 acknowledged jobs lost', measured: String(inv.lost.length), verdict: verdict(inv.lost.length === 0) },
    {
      goal: 'after each Redis fault: the old primary back as a replica, one primary, 0 jobs lost',
      measured: redis.length
        ? redis
            .map(
              (f) =>
                `${f.kind}: ${f.recoveredMs === undefined ? 'not back' : `back ${(f.recoveredMs / 1000).toFixed(1)} s`}, ${f.primaries ?? '?'} primary, ${f.lost ?? '?'} lost`,
            )
            .join('; ')
        : 'no such fault',
      verdict: redis.length ? verdict(redis.every((f) => f.recoveredMs !== undefined && f.primaries === 1 && f.lost === 0)) : '—',
    },
    { goal: '0 jobs finished twice', measured: String(inv.finishedTwice.length), verdict: verdict(inv.finishedTwice.length === 0) },
    {
      goal: '0 usage records lost or double-billed',
      measured: `${inv.usage.discrepancies} discrepancies over ${inv.usage.jobs} jobs`,
      verdict: verdict(inv.usage.ok),
    },
    {
      goal: `every service under ${inv.memoryBoundBytes / 2 ** 20} MiB RSS after the run`,
      measured: inv.overBound.length ? inv.overBound.join(', ') : 'all',
      verdict: verdict(inv.overBound.length === 0),
    },
    { goal: 'a 10-minute run', measured: `${r.durationMs / 1000} s`, verdict: verdict(r.durationMs >= 600_000) },
  ];
}
