/**
 * `npm run bench:degradation`: rendition-set traffic beyond the system's capacity, with
 * the API servers' brownout dimmers (degrade, then shed) against admission control alone
 * (shed only), side by side in one run.
 *
 * 1. Capacity: a closed loop of clients sends rendition sets at full quality (no
 *    deadline pressure) to the shed-only system; complete sets per second. Measured in
 *    this run (the machine is shared), and again at the end.
 * 2. Open-loop Poisson load at 2× and 3× that capacity, each contender in turn: yield
 *    (answers 200, partial ones included, ÷ requests), mean harvest of those answers,
 *    p99 of their latency, and how every other request was answered (503 + Retry-After,
 *    504, a client timeout, a late answer).
 * 3. Step changes of load on the brownout system (0.5×, 2×, 0.5×, 3×, 1×): the dimmer
 *    of each API server sampled every 250 ms, when it settles after each step and how
 *    far it moves once settled; charted in benchmarks/results/degradation.svg.
 *
 * Bounded: about four minutes (`-- --quick`: about two). Results go to
 * benchmarks/results/degradation.{json,md,svg}. `-- --only=overload` or `-- --only=steps`
 * runs part 2 or part 3 alone (after part 1) and prints its figures without writing them.
 */
import { fork } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sampleJpeg } from '@ballast/app-worker';
import { publishFigures } from '../lib/figures.ts';
import { openLoop } from '../lib/open-loop.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import { type DimmerSample, dimmerChart, type LoadSegment } from './chart.ts';

const quick = process.argv.includes('--quick');
const only = process.argv.find((a) => a.startsWith('--only='))?.slice('--only='.length);
if (only !== undefined && only !== 'overload' && only !== 'steps') {
  throw new Error(`--only must be overload or steps, got ${JSON.stringify(only)}`);
}
const cores = availableParallelism();
const RUN_MS = quick ? 12_000 : 20_000;
const WARMUP_MS = 3000;
const STEP_MS = quick ? 12_000 : 20_000;
const DEADLINE_MS = 450;
/** A responsive `srcset`: three widths in WebP and AVIF, at explicit efforts. */
const SET = 'widths=80,160,240&formats=webp,avif&effort=webp:4,avif:3';
const ASKED = 6;
const image = await sampleJpeg();
const loads: number[] = [loadavg()[0] ?? 0];

interface Child {
  url: string;
  ask<T>(type: string): Promise<T>;
  stop(): Promise<void>;
}

/** The system (server.ts) in its own process, with brownout on or off. */
async function startChild(mode: 'brownout' | 'shed'): Promise<Child> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [mode], {
    execArgv: ['--conditions=@ballast/source', '--initial-old-space-size=128'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const waiting: Array<(m: unknown) => void> = [];
  child.on('message', (m) => waiting.shift()?.(m));
  const next = <T>(): Promise<T> => new Promise((resolve) => waiting.push(resolve as (m: unknown) => void));
  const { url } = await next<{ url: string }>();
  return {
    url,
    async ask<T>(type: string) {
      const reply = next<T>();
      child.send({ type });
      return await reply;
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.send({ type: 'stop' });
      await exited;
    },
  };
}

/** What one rendition-set request got. */
interface Answer {
  at: number;
  status: number;
  harvest: number;
  retryAfter: boolean;
  ms: number;
  /** The dimmer θ the set was planned at (`x-ballast-dimmer`; 1 without brownout). */
  level: number;
  /** Degradation stages applied (`x-ballast-degraded`). */
  degraded: string;
  /** What the answer was, for the breakdown: `200 partial`, `503 ERR_BALLAST_OVERLOADED queueFull`, … */
  kind: string;
  /** Renditions missing from a 200 answer, by reason (`degraded`, `deadline`, `shed`, …). */
  missing: Record<string, number>;
}

/** Sends one rendition set; a client gives up 2 s past the deadline (a timeout). */
async function sendSet(url: string, deadlineMs: number, signal?: AbortSignal): Promise<Answer> {
  const at = performance.now();
  const res = await fetch(`${url}/v1/renditions?${SET}&deadlineMs=${deadlineMs}`, {
    method: 'POST',
    body: image,
    headers: { 'content-type': 'image/jpeg' },
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(deadlineMs + 2000)]) : AbortSignal.timeout(deadlineMs + 2000),
  });
  const body = (await res.json().catch(() => ({}))) as {
    error?: { code?: string };
    renditions?: Array<{ status: string; reason?: string }>;
  };
  const harvest = res.status === 200 ? Number(res.headers.get('x-ballast-harvest') ?? 1) : 0;
  const missing: Record<string, number> = {};
  for (const r of body.renditions ?? []) if (r.status === 'missing') missing[r.reason ?? '?'] = (missing[r.reason ?? '?'] ?? 0) + 1;
  const kind =
    res.status === 200
      ? `200 ${harvest === 1 ? 'complete' : 'partial'}`
      : [res.status, body.error?.code ?? '-', res.headers.get('x-ballast-shed') ?? ''].join(' ').trim();
  return {
    at,
    status: res.status,
    harvest,
    retryAfter: res.headers.has('retry-after'),
    ms: performance.now() - at,
    level: Number(res.headers.get('x-ballast-dimmer') ?? 1),
    degraded: res.headers.get('x-ballast-degraded') ?? '',
    kind,
    missing,
  };
}

/** `a 3, b 1` for `{ a: 3, b: 1 }`, the largest first. */
const describe = (counts: Record<string, number>): string =>
  Object.entries(counts)
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ${n}`)
    .join(', ') || 'none';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Complete full-quality sets per second under a closed loop of clients (deadline far away). */
async function capacity(child: Child): Promise<number> {
  const clients = cores * 2;
  const ms = quick ? 6000 : 10_000;
  let complete = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() - start < ms) {
        const a = await sendSet(child.url, 10_000);
        if (a.status === 200 && a.harvest === 1) complete++;
      }
    }),
  );
  return complete / ((performance.now() - start) / 1000);
}

/** How the requests of a run were answered: counts by kind of answer, and the renditions missing from 200s by reason. */
interface Breakdown {
  answers: Record<string, number>;
  missing: Record<string, number>;
}

/** Open-loop Poisson load at `rate` sets/s for `ms`: the figures of the requests sent after the warm-up. */
async function offer(child: Child, rate: number, ms: number): Promise<{ row: Row; breakdown: Breakdown }> {
  const answers: Answer[] = [];
  const started = performance.now();
  const result = await openLoop(
    async (_i, signal) => {
      const answer = await sendSet(child.url, DEADLINE_MS, signal);
      if (answer.at - started >= WARMUP_MS) answers.push(answer);
      return { status: answer.status };
    },
    { ratePerSec: rate, durationMs: ms, arrivals: 'poisson', maxInFlight: 5000, warmupMs: WARMUP_MS },
  );
  const ok = answers.filter((a) => a.status === 200);
  const requests = answers.length + result.failed;
  const count = (f: (a: Answer) => boolean): number => answers.filter(f).length;
  const breakdown: Breakdown = { answers: {}, missing: {} };
  const add = (to: Record<string, number>, key: string, n = 1): void => {
    to[key] = (to[key] ?? 0) + n;
  };
  for (const a of answers) {
    add(breakdown.answers, a.kind);
    for (const [reason, n] of Object.entries(a.missing)) if (a.status === 200) add(breakdown.missing, reason, n);
  }
  if (result.failed > 0) add(breakdown.answers, 'client timeout or error', result.failed);
  const notServed = answers.filter((a) => a.status !== 200).map((a) => ((a.at - started) / 1000).toFixed(1));
  if (notServed.length > 0) console.log(`    not served, s after the load started: ${notServed.join(' ')}`);
  const row: Row = {
    requests,
    yield: ok.length / Math.max(1, requests),
    'mean harvest': ok.reduce((s, a) => s + a.harvest, 0) / Math.max(1, ok.length),
    'harvest × yield': ok.reduce((s, a) => s + a.harvest, 0) / Math.max(1, requests),
    'admitted p50 ms': result.byStatus['200']?.latency.p50,
    'admitted p99 ms': result.byStatus['200']?.latency.p99,
    'max ms': result.latency.max,
    'mean θ': ok.reduce((sum, a) => sum + a.level, 0) / Math.max(1, ok.length),
    'effort lowered': count((a) => a.status === 200 && a.degraded.includes('effort')) / Math.max(1, ok.length),
    'renditions dropped': count((a) => a.status === 200 && /format|width/.test(a.degraded)) / Math.max(1, ok.length),
    complete: count((a) => a.status === 200 && a.harvest === 1) / Math.max(1, requests),
    partial: count((a) => a.status === 200 && a.harvest < 1) / Math.max(1, requests),
    '503 + Retry-After': count((a) => a.status === 503 && a.retryAfter) / Math.max(1, requests),
    '504': count((a) => a.status === 504),
    timeouts: result.failed,
    'late (> deadline + 100 ms)': count((a) => a.ms > DEADLINE_MS + 100),
    other: count((a) => ![200, 503, 504].includes(a.status) || (a.status === 503 && !a.retryAfter)),
  };
  return { row, breakdown };
}

/** Step changes of load on one system, the dimmers sampled every 250 ms. */
async function steps(child: Child, cap: number, multipliers: number[]): Promise<{ samples: DimmerSample[]; segments: LoadSegment[] }> {
  const samples: DimmerSample[] = [];
  const start = performance.now();
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const { levels } = await child.ask<{ levels: number[] }>('dimmer');
      samples.push({ t: (performance.now() - start) / 1000, levels });
      await pause(250);
    }
  })();
  const segments: LoadSegment[] = [];
  for (const multiplier of multipliers) {
    const from = (performance.now() - start) / 1000;
    await openLoop(async (_i, signal) => ({ status: (await sendSet(child.url, DEADLINE_MS, signal)).status }), {
      ratePerSec: multiplier * cap,
      durationMs: STEP_MS,
      arrivals: 'poisson',
      maxInFlight: 5000,
    });
    segments.push({ from, to: (performance.now() - start) / 1000, multiplier, final: 1, settledAfter: 0 });
  }
  sampling = false;
  await sampler;
  for (const s of segments) Object.assign(s, settling(samples, s));
  return { samples, segments };
}

/** Where θ (the servers' mean) ends in a segment (mean of its last 8 s), when it stays within ±0.1 of that, and how far it moves after. */
function settling(samples: DimmerSample[], s: LoadSegment): { final: number; settledAfter: number; maxDeviation: number; spread: number } {
  const mean = (d: DimmerSample): number => d.levels.reduce((a, b) => a + b, 0) / d.levels.length;
  const inside = samples.filter((d) => d.t >= s.from && d.t < s.to);
  const tail = inside.filter((d) => d.t >= s.to - 8).map(mean);
  const final = tail.reduce((a, b) => a + b, 0) / Math.max(1, tail.length);
  let settled = inside.length;
  while (settled > 0 && Math.abs(mean(inside[settled - 1] as DimmerSample) - final) <= 0.1) settled--;
  const after = inside.slice(settled).map(mean);
  const settledAfter = settled < inside.length ? (inside[settled] as DimmerSample).t - s.from : s.to - s.from;
  return {
    final,
    settledAfter,
    maxDeviation: Math.max(0, ...after.map((v) => Math.abs(v - final))),
    spread: tail.length > 0 ? (Math.max(...tail) - Math.min(...tail)) / 2 : 0,
  };
}

const brownout = await startChild('brownout');
const shed = await startChild('shed');
try {
  await main();
} finally {
  await brownout.stop();
  await shed.stop();
}

async function main(): Promise<void> {
  for (const child of [brownout, shed]) for (let i = 0; i < 10; i++) await sendSet(child.url, 10_000); // warm up
  const cap = await capacity(shed);
  loads.push(loadavg()[0] ?? 0);
  console.log(
    `Capacity: ${fmt(cap)} full-quality rendition sets/s (${ASKED} renditions each: ${SET}); ${cores} cores, load average ${fmt(loads[1])}.`,
  );

  const rows: Row[] = [];
  const breakdowns: Array<{ load: string; contender: string } & Breakdown> = [];
  for (const multiplier of only === 'steps' ? [] : [2, 3]) {
    for (const [name, child] of [
      ['brownout, then shed', brownout],
      ['shed only', shed],
    ] as const) {
      await pause(2000);
      const { row, breakdown } = await offer(child, multiplier * cap, RUN_MS);
      rows.push({ load: `${multiplier}×`, contender: name, 'offered/s': multiplier * cap, ...row });
      breakdowns.push({ load: `${multiplier}×`, contender: name, ...breakdown });
      loads.push(loadavg()[0] ?? 0);
      console.log(
        `  ${multiplier}× ${name}: yield ${fmt((row.yield as number) * 100)}%, mean harvest ${fmt(row['mean harvest'] as number)}, admitted p99 ${fmt(row['admitted p99 ms'] as number)} ms, 503 ${fmt((row['503 + Retry-After'] as number) * 100)}%, 504 ${row['504']}, timeouts ${row.timeouts}`,
      );
      console.log(`    answers: ${describe(breakdown.answers)}; renditions missing from 200s: ${describe(breakdown.missing)}`);
    }
  }
  const columns = [
    'load',
    'contender',
    'offered/s',
    'requests',
    'yield',
    'mean harvest',
    'harvest × yield',
    'admitted p50 ms',
    'admitted p99 ms',
    'max ms',
    'complete',
    'partial',
    '503 + Retry-After',
    '504',
    'timeouts',
    'late (> deadline + 100 ms)',
    'other',
  ];
  printTable(`Rendition sets (${ASKED} renditions, ${DEADLINE_MS} ms deadline) at 2× and 3× the full-quality capacity`, rows, columns);

  await pause(2000);
  const multipliers = only === 'overload' ? [] : [0.5, 2, 0.5, 3, 1];
  const { samples, segments } = await steps(brownout, cap, multipliers);
  const stepRows: Row[] = segments.map((s) => {
    const x = settling(samples, s);
    return {
      step: `→ ${s.multiplier}×`,
      'θ settled at': x.final,
      'settled after s': x.settledAfter,
      'max |θ − settled| after': x.maxDeviation,
      '± over the last 8 s': x.spread,
    };
  });
  printTable('The dimmer after step changes of load (θ = mean of the three API servers, sampled every 250 ms)', stepRows);
  if (only !== undefined) {
    console.log(`\n--only=${only}: results not written.`);
    return;
  }
  const capAfter = await capacity(shed);
  loads.push(loadavg()[0] ?? 0);
  console.log(`Capacity again at the end: ${fmt(capAfter)} sets/s.`);

  writeResult(
    'degradation.svg',
    dimmerChart(`Brownout dimmer θ under step changes of load (capacity ${fmt(cap)} sets/s)`, samples, segments),
  );
  writeResult('degradation.json', {
    machine: machine(),
    quick,
    loadAverage: loads,
    request: { set: SET, renditions: ASKED, deadlineMs: DEADLINE_MS, inputBytes: image.length },
    capacity: { start: cap, end: capAfter },
    runs: rows,
    answers: breakdowns,
    steps: stepRows,
    samples,
  });
  const md = [
    `Measured on ${cores} cores (${machine().cpuModel}), Node ${process.version}, \`npm run bench:degradation\`${quick ? ' -- --quick' : ''}.`,
    `1-minute load average during the run: ${loads.map((l) => fmt(l)).join(' → ')} (above ${cores}: other processes competed for the cores).`,
    `Rendition set: \`${SET}\` (${ASKED} renditions of a ${Math.round(image.length / 1024)} KB 1600×1200 JPEG), sync, \`deadlineMs=${DEADLINE_MS}\`.`,
    `Full-quality capacity measured in the run: ${fmt(cap)} sets/s at the start, ${fmt(capAfter)} at the end.`,
    '',
    markdownTable(rows, columns),
    '',
    'Every answer by kind (status, error code, `x-ballast-shed`), and the renditions missing from the 200 answers by reason:',
    '',
    markdownTable(
      breakdowns.map((b) => ({
        load: b.load,
        contender: b.contender,
        answers: describe(b.answers),
        'missing from 200s': describe(b.missing),
      })),
    ),
    '',
    markdownTable(stepRows),
    '',
    '![θ over time](degradation.svg)',
    '',
  ].join('\n');
  writeResult('degradation.md', md);
  await publishFigures('degradation');
  console.log('\nWrote benchmarks/results/degradation.{json,md,svg}');
}
