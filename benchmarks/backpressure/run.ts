/**
 * `npm run bench:backpressure`
 *
 * 1. Admission decision cost: Ballast's limiters next to bottleneck, same run.
 * 2. bottleneck's Redis clustering on this machine's Redis.
 * 3. Overload: a real HTTP server on loopback whose handler does 20 ms of work on a
 *    resource of capacity C, driven open-loop at 3 × C without admission control, and with
 *    Ballast's admission control under Vegas (two tunings and the defaults) and Gradient2
 *    (defaults). Bounded to about three minutes.
 *
 * `--quick` shortens each overload run to 5 s and writes no result files: a smoke check only.
 */
import { loadavg } from 'node:os';
import { publishFigures } from '../lib/figures.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import {
  admissionBenchmarks,
  BULKHEAD,
  LIMITER_BEFORE,
  LIMITER_EXECUTE,
  LIMITER_FAIL,
  LIMITER_FAIL_TODAY,
  limiterSuccessPath,
} from './admission.ts';
import { bottleneckRedisCheck } from './bottleneck-redis.ts';
import { type OverloadRun, overloadRun } from './overload.ts';

const SLOTS = 2;
const WORK_MS = 20;
const CAPACITY = (SLOTS * 1000) / WORK_MS; // requests per second
// `--quick`: a short check of the overload part (5 s per configuration); the README figures come from a full run.
const QUICK = process.argv.includes('--quick');
const LOAD_MS = Number(process.env.LOAD_MS ?? (QUICK ? 5000 : 15_000));
// Long enough for a few hundred samples, so the baseline p99 is not one stray stall.
const UNLOADED_MS = QUICK ? 5000 : 20_000;
const WINDOW_MS = 3000;

const host = { ...machine(), loadavg: loadavg().map((l) => Number(l.toFixed(2))) };
console.log(`Machine: ${host.cpuModel} × ${host.cpus}, Node ${host.node}, load average ${host.loadavg.join(' ')}`);

// 1. Admission decisions
const admission = await admissionBenchmarks();
const decisionRows: Row[] = admission.decisions.map((m) => ({ operation: m.name, 'ns/op': m.nsPerOp, 'ops/s': Math.round(m.opsPerSec) }));
printTable('Admission decision cost (median of 7 samples)', decisionRows);
const bottleneckRows: Row[] = [
  { measure: 'bottleneck: schedule() to job start, median (ms)', value: admission.bottleneck.startDelayMs },
  { measure: 'bottleneck: schedule() to job start, p99 (ms)', value: admission.bottleneck.startDelayP99Ms },
  { measure: 'bottleneck: jobs/s, 5,000 scheduled at once, default options', value: Math.round(admission.bottleneck.jobsPerSec) },
  { measure: 'KeyedRateLimiter: heap for 100,000 keys, maxKeys 10,000 (MB)', value: admission.keyedHeapBytes / 2 ** 20 },
];
printTable('bottleneck per-job overhead; bounded per-key memory', bottleneckRows);

// 1b. The success path of a call under a limiter, next to cockatiel's bulkhead and the baseline
const limiterRows = await limiterSuccessPath();
printTable('A call under a concurrency limiter that admits it at once: CPU time and heap bytes per call over the bare call', limiterRows);
const limiterOverhead = (name: string): number => limiterRows.find((r) => r.limiter === name)?.['overhead ns/call'] as number;
const limiterGoals = [
  `execute (fixed limit) vs cockatiel's bulkhead: ${fmt(limiterOverhead(LIMITER_EXECUTE))} ns vs ${fmt(limiterOverhead(BULKHEAD))} ns (goal <= 1x) ${limiterOverhead(LIMITER_EXECUTE) <= limiterOverhead(BULKHEAD) ? 'MET' : 'MISSED'}`,
  ...(limiterRows.some((r) => r.limiter === LIMITER_BEFORE)
    ? [
        `execute (fixed limit) vs run() before the contract: ${fmt(limiterOverhead(LIMITER_EXECUTE) / limiterOverhead(LIMITER_BEFORE))}x (goal <= 1.1)`,
      ]
    : []),
  ...(limiterRows.some((r) => r.limiter === LIMITER_FAIL_TODAY)
    ? [
        `a rejected call under execute: ${fmt(limiterOverhead(LIMITER_FAIL))} ns vs ${fmt(limiterOverhead(LIMITER_FAIL_TODAY))} ns before the hot-path work (goal <= 1x) ${limiterOverhead(LIMITER_FAIL) <= limiterOverhead(LIMITER_FAIL_TODAY) ? 'MET' : 'MISSED'}`,
      ]
    : []),
];
console.log(limiterGoals.map((g) => `- ${g}`).join('\n'));

// 2. bottleneck clustering on Redis
const clustering = await bottleneckRedisCheck();
printTable('bottleneck clustering (datastore: ioredis)', [
  { check: 'Redis version', result: clustering.redisVersion },
  { check: '20 jobs on a fresh limiter', result: clustering.scheduleWorks ? 'ok' : 'failed' },
  { check: 'next job after the limiter keys are lost (FLUSHALL)', result: clustering.afterKeyLoss },
  { check: 'the job after that', result: clustering.afterKeyLossAgain },
]);

// 3. Overload
const base = { SLOTS: String(SLOTS), WORK_MS: String(WORK_MS) };
const configs: Array<[label: string, env: Record<string, string>, rate: number, durationMs: number]> = [
  ['unloaded (0.3 × C), no limiter', { MODE: 'none' }, CAPACITY * 0.3, UNLOADED_MS],
  ['3 × C, no limiter', { MODE: 'none' }, CAPACITY * 3, LOAD_MS],
  [
    '3 × C, Ballast Vegas (alpha 1, beta 2, threshold 0)',
    { MODE: 'adaptive', ALGORITHM: 'vegas', ALPHA: '1', BETA: '2', THRESHOLD: '0' },
    CAPACITY * 3,
    LOAD_MS,
  ],
  ['3 × C, Ballast Vegas (alpha 1, beta 2)', { MODE: 'adaptive', ALGORITHM: 'vegas', ALPHA: '1', BETA: '2' }, CAPACITY * 3, LOAD_MS],
  ['3 × C, Ballast Vegas (defaults)', { MODE: 'adaptive', ALGORITHM: 'vegas-default' }, CAPACITY * 3, LOAD_MS],
  ['3 × C, Ballast Gradient2 (defaults)', { MODE: 'adaptive', ALGORITHM: 'gradient2' }, CAPACITY * 3, LOAD_MS],
];
const runs: OverloadRun[] = [];
for (const [label, env, rate, durationMs] of configs) runs.push(await overloadRun(label, { ...base, ...env }, rate, durationMs, WINDOW_MS));

const unloadedP99 = runs[0]!.result.byStatus['200']?.latency.p99 ?? Number.NaN;
const overloadRows: Row[] = runs.map((run) => {
  const ok = run.result.byStatus['200'];
  const shed = run.result.byStatus['503'];
  return {
    run: run.label,
    'rate/s': run.ratePerSec,
    'ok (200)': ok?.count ?? 0,
    'shed (503)': shed?.count ?? 0,
    failed: run.result.failed + run.result.dropped,
    '200 p50 ms': ok?.latency.p50,
    '200 p99 ms': ok?.latency.p99,
    'p99 ÷ unloaded p99': (ok?.latency.p99 ?? Number.NaN) / unloadedP99,
    '503 p50 ms': shed?.latency.p50,
    '503 p99 ms': shed?.latency.p99,
    '503 p99 from send ms': run.fromSend['503']?.p99,
    '503 p99 in server ms': run.server.inServer['503']?.p99,
    'generator lag p99 ms': run.generatorLag.p99,
    'server loop delay p99 ms': run.server.eventLoopDelayP99Ms,
    'limit median / max': run.label.includes('no limiter') ? '—' : `${run.server.limitMedian} / ${run.server.limitMax}`,
    'server heap max MB': run.server.heapMaxMb,
    'backlog max': run.server.backlogMax,
  };
});
printTable(`Overload: handler ${WORK_MS} ms on ${SLOTS} slots (C = ${CAPACITY}/s), open-loop, latency from scheduled send`, overloadRows);
// Every row gets every window: a run whose late requests never completed has fewer.
const windowCount = Math.max(...runs.slice(1).map((run) => run.p99ByWindow.length));
const timelineRows: Row[] = runs.slice(1).map((run) => {
  const row: Row = { run: run.label };
  for (let i = 0; i < windowCount; i++) {
    const p99 = run.p99ByWindow[i];
    row[`${(i * WINDOW_MS) / 1000}–${((i + 1) * WINDOW_MS) / 1000} s`] = p99 === undefined || Number.isNaN(p99) ? '—' : p99;
  }
  return row;
});
printTable('p99 of 200 answers (ms) by send time', timelineRows);

const markdown = [
  `Machine: ${host.cpuModel} × ${host.cpus}, Node ${host.node}, load average at start ${host.loadavg.join(' ')}.`,
  '',
  markdownTable(decisionRows),
  '',
  markdownTable(bottleneckRows),
  '',
  markdownTable(limiterRows),
  '',
  ...limiterGoals.map((g) => `- ${g}`),
  '',
  markdownTable([
    { check: `bottleneck over Redis ${clustering.redisVersion}: 20 jobs`, result: clustering.scheduleWorks ? 'ok' : 'failed' },
    { check: 'next job after the limiter keys are lost', result: clustering.afterKeyLoss },
    { check: 'the job after that', result: clustering.afterKeyLossAgain },
  ]),
  '',
  markdownTable(overloadRows),
  '',
  markdownTable(timelineRows),
].join('\n');
if (!QUICK) {
  writeResult('backpressure.json', {
    machine: { ...host, loadAverageAtEnd: loadavg().map((l) => Number(l.toFixed(2))) },
    admission,
    limiter: limiterRows,
    limiterGoals,
    clustering,
    overload: runs.map(({ result, ...rest }) => ({ ...rest, result: { ...result, histograms: undefined } })),
  });
  writeResult('backpressure.md', `${markdown}\n`);
  await publishFigures('backpressure');
}
console.log(`\nUnloaded p99 ${fmt(unloadedP99)} ms.${QUICK ? '' : ' Results written to benchmarks/results/backpressure.{json,md}'}`);
