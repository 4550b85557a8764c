/**
 * `npm run bench:attacks`: what a hostile client can do to a well-behaved one.
 *
 * The distributed system — a worker, three API servers and the gateway, each its own
 * process started from its main.ts, on a real Redis — serves a well-behaved client that
 * sends small resize requests on an open-loop schedule (steady rate, latency measured
 * from the scheduled time). Each attack of the hostile-client review gets a system of its
 * own, freshly started and warmed up, so nothing one attack leaves behind (the throttle's
 * memory, the service-time feed, queued jobs) reaches another's figures: a quiet run, then
 * the attack from another loopback address (127.0.0.2) beside the same client, then a run
 * right after the attack stopped (recovery); twice over, interleaved. The API servers run
 * with the cost budget recommended for a public edge (`EDGE_BUDGET`), so the costly attacks
 * send the dearest requests an anonymous client may send, and the worker with the CPU
 * priority recommended where it shares cores with the request path (`WORKER_NICE`). The table puts the well-behaved client's
 * yield (answered 200, out of every request it meant to send) and p99 under attack beside
 * the quiet run's. Goal: yield ≥ 99.9% and p99 ≤ 1.5 × quiet under every attack.
 *
 *   npm run bench:attacks               # 2 rounds of 8 s runs (about 9 minutes)
 *   npm run bench:attacks -- --quick    # 1 round of 4 s runs
 *   npm run bench:attacks -- --quick --only='paused API server,junk requests'   # those attacks only; no results written
 *
 * Results: benchmarks/results/attacks.{json,md}.
 */
import { loadavg } from 'node:os';
import { type Attack, type Distributed, idleConnections, junk, repeat, send, startDistributed, uploads } from '@ballast/app-system';
import { sampleJpeg } from '@ballast/app-worker';
import { Histogram } from '@ballast/common';
import { startRedis } from '@ballast/test/redis';
import sharp from 'sharp';
import { openLoop } from '../lib/open-loop.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const quick = process.argv.includes('--quick');
/** `--only=<name>,<name>`: run these attacks only, and print without writing the results files. */
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',')
  .map((n) => n.trim());
const runMs = quick ? 4000 : 8000;
/** Quiet, attacked, after: this many times over on each attack's system (the machine's load drifts; each condition gets its share of it). */
const rounds = quick ? 1 : 2;
const ratePerSec = 10;
const loadBefore = loadavg()[0] ?? 0;

/** A running attack, and what it measured of the system's response, for the results. */
interface Running extends Attack {
  /** Figures it took (the time to take a paused server out of rotation, say). */
  measured?: () => Record<string, unknown>;
}

/** One attack: started before the measured run, stopped after it. */
interface Scenario {
  name: string;
  /** What it does, for the table. */
  what: string;
  start(system: Distributed): Running | Promise<Running>;
}

/**
 * The cost budget recommended for API servers facing anonymous clients (off by default):
 * each address may book a quarter of the workers' time (250 ms/s per worker slot; the
 * system here has 2) and 5 s of indicative conversion at once, its dearest request.
 */
const EDGE_BUDGET = { BALLAST_API_ANONYMOUS_COST_MS_PER_SEC: '500', BALLAST_API_ANONYMOUS_COST_BURST_MS: '5000' };

/** The worker's CPU priority recommended where workers share cores with the request path (every service here shares 2). */
const WORKER_NICE = '10';

const avif = await sampleJpeg({ width: 320, height: 240 });
const noisy = await sampleJpeg({ width: 2000, height: 2000 });

/** The same costly resize (`query`) of `body`, back to back, `concurrency` at a time, from the hostile address. */
function costly(s: Distributed, query: string, body: Buffer, concurrency: number): Attack {
  const url = `${s.url}/v1/resize?${query}`;
  return repeat((signal) => send(url, { method: 'POST', body, headers: { 'content-type': 'image/jpeg' }, signal }), concurrency);
}

const scenarios: Scenario[] = [
  {
    name: 'pathological requests',
    what: 'the costliest AVIF an anonymous client may ask for, back to back, 4 at a time: 640×640 at effort 4 (about 4.9 s of indicative cost, just under the budget’s 5 s)',
    start: (s) => costly(s, 'format=avif&width=640&height=640&fit=fill&effort=4&deadlineMs=60000', avif, 4),
  },
  {
    name: 'long conversions',
    what: 'the longest conversion an anonymous client may ask for, back to back, 2 at a time: WebP 2950×2950 at effort 6 from a noisy 2000×2000 JPEG (about 5 s of indicative cost, seconds of CPU), 5 s deadline',
    start: (s) => costly(s, 'format=webp&width=2950&height=2950&fit=fill&effort=6&deadlineMs=5000', noisy, 2),
  },
  {
    name: 'slow uploads',
    what: '50 uploads of 9 MB at 20 KB/s (above the minimum rate), held open',
    start: (s) => stopAll(uploads(s.url, 50, { length: 9_000_000, first: 20_000, more: 20_000 })),
  },
  {
    name: 'incomplete uploads',
    what: '40 uploads of 9 MB, each stopped 100 KB short of its end',
    start: (s) => stopAll(uploads(s.url, 40, { length: 9_000_000, first: 8_900_000 })),
  },
  {
    name: 'dribbling bodies',
    what: '100 uploads sending 20 bytes/s',
    start: (s) => stopAll(uploads(s.url, 100, { length: 100_000, first: 10, more: 10, everyMs: 500 })),
  },
  {
    name: 'idle connections',
    what: '400 connections sending nothing, 100 sending half a request’s headers, from one address (its limit is 256: the rest are closed at once)',
    start: (s) => stopAll([idleConnections(s.url, 400), idleConnections(s.url, 100, { partial: true })]),
  },
  {
    name: 'junk requests',
    what: 'operational paths and their encodings, SVG and PDF bodies, forged forwarding headers, 4 at a time',
    start: (s) => junk(s.url, 4),
  },
  {
    name: 'paused API server',
    what: 'one of the three API servers stopped (SIGSTOP) for the run: a failure, not a client. `detection`: time from SIGSTOP until the gateway took it out of rotation',
    start: (s) => pause(s),
  },
];

/**
 * Stops the first API server (SIGSTOP) and measures how long the gateway takes to take it
 * out of rotation (its endpoint no longer `healthy` in `/gateway/stats`, polled every 50 ms).
 */
function pause(s: Distributed): Running {
  const api = s.apis[0];
  const id = 'api-1'; // the gateway names its upstreams api-1… in the order given
  const detected: number[] = [];
  const stoppedAt = performance.now();
  let polling = true;
  api?.proc.kill('SIGSTOP');
  void (async () => {
    while (polling) {
      const stats = (await (await fetch(`${s.ops}/gateway/stats`)).json()) as {
        balancer: { endpoints: Array<{ id: string; state: string }> };
      };
      const state = stats.balancer.endpoints.find((e) => e.id === id)?.state;
      if (state !== undefined && state !== 'healthy' && state !== 'warming') {
        detected.push(performance.now() - stoppedAt);
        return;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })().catch(() => undefined);
  return {
    stop: () => {
      polling = false;
      api?.proc.kill('SIGCONT');
    },
    measured: () => ({ detectionMs: detected[0] }),
  };
}

function stopAll(attacks: Attack[]): Attack {
  return {
    stop: () => {
      for (const a of attacks) a.stop();
    },
  };
}

/** What the well-behaved client saw over one or more runs. */
interface Seen {
  sent: number;
  ok: number;
  latency: Histogram;
  /** Answers by status and error code (`503 ERR_BALLAST_…`), and `failed` for transport errors. */
  statuses: Record<string, number>;
}

/** The well-behaved client: small resizes at `ratePerSec` for `runMs`, added to `seen`. */
async function wellBehaved(url: string, image: Buffer, seen: Seen, durationMs = runMs): Promise<void> {
  const result = await openLoop(
    async (_i, signal) => {
      const res = await fetch(`${url}/v1/resize?width=64`, {
        method: 'POST',
        body: image,
        headers: { 'content-type': 'image/jpeg' },
        signal,
      });
      const body = await res.arrayBuffer();
      if (res.status === 200) return { status: 200 };
      const code = (JSON.parse(Buffer.from(body).toString()) as { error?: { code?: string } }).error?.code ?? '?';
      return { status: `${res.status} ${code}` };
    },
    { ratePerSec, durationMs, maxInFlight: 200 },
  );
  // Every request the client meant to send: one the generator had to drop (too many in flight) is not served either.
  seen.sent += result.sent + result.dropped;
  if (result.dropped > 0) seen.statuses.dropped = (seen.statuses.dropped ?? 0) + result.dropped;
  seen.ok += result.byStatus['200']?.count ?? 0;
  seen.latency.merge(result.histograms.all);
  for (const [status, { count }] of Object.entries(result.byStatus)) seen.statuses[status] = (seen.statuses[status] ?? 0) + count;
  if (result.failed > 0) seen.statuses.failed = (seen.statuses.failed ?? 0) + result.failed;
}

/** Waits (up to a minute) until the system is idle again: no job in the queue, nothing in flight at the gateway. */
async function settle(system: Distributed): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const metrics = await (await fetch(`${String(system.apis[1]?.info.ops)}/metrics`)).text();
    const depth = Number(/^ballast_api_queue_depth (\S+)$/m.exec(metrics)?.[1] ?? 0);
    const stats = (await (await fetch(`${system.ops}/gateway/stats`)).json()) as { inflight: number };
    if (depth === 0 && stats.inflight === 0) return;
    await new Promise((r) => setTimeout(r, 250));
  }
}

const empty = (): Seen => ({ sent: 0, ok: 0, latency: new Histogram(), statuses: {} });
const summary = (s: Seen) => ({ yield: s.ok / Math.max(1, s.sent), ...s.latency.summary(), statuses: s.statuses });

const redis = await startRedis();
let current: Distributed | undefined;
// Interrupted: the services are processes of their own; stop them and Redis before leaving.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void Promise.allSettled([current?.close(), redis.stop()]).then(() => process.exit(130));
  });
}
const rows: Row[] = [];
const details: unknown[] = [];
const image = await sharp(await sampleJpeg())
  .resize(320)
  .jpeg()
  .toBuffer();
console.log(
  `Well-behaved client: ${ratePerSec} req/s of a ${Math.round(image.length / 1024)} KB JPEG → 64 px; per attack a fresh system, ${rounds} × ${runMs / 1000} s quiet, attacked, then after. Load average before: ${loadBefore.toFixed(1)}.`,
);
try {
  for (const scenario of scenarios.filter((s) => only === undefined || only.includes(s.name))) {
    const system = await startDistributed({
      redisUrl: redis.url,
      apis: 3,
      workers: 1,
      env: { BALLAST_LOG_LEVEL: 'error' },
      api: EDGE_BUDGET,
      worker: { BALLAST_WORKER_NICE: WORKER_NICE },
    });
    current = system;
    const [quietSeen, attackedSeen, afterSeen] = [empty(), empty(), empty()];
    const measured: Record<string, unknown>[] = [];
    const load = loadavg()[0] ?? 0;
    try {
      await wellBehaved(system.url, image, empty(), Math.min(runMs, 4000)); // warm-up
      for (let round = 0; round < rounds; round++) {
        await settle(system);
        await wellBehaved(system.url, image, quietSeen);
        const attack = await scenario.start(system);
        await new Promise((r) => setTimeout(r, 500)); // let it take hold
        await wellBehaved(system.url, image, attackedSeen);
        attack.stop();
        if (attack.measured) measured.push(attack.measured());
        await wellBehaved(system.url, image, afterSeen);
      }
    } finally {
      await system.close();
    }
    const [quiet, attacked, after] = [summary(quietSeen), summary(attackedSeen), summary(afterSeen)];
    const ratio = attacked.p99 / quiet.p99;
    const met = attacked.yield >= 0.999 && ratio <= 1.5;
    const detection = measured.map((m) => m.detectionMs).filter((ms): ms is number => typeof ms === 'number');
    rows.push({
      attack: scenario.name,
      'yield quiet': pct(quiet.yield),
      'yield attacked': `${pct(attacked.yield)} (${attackedSeen.ok}/${attackedSeen.sent})`,
      'p99 quiet ms': fmt(quiet.p99, 3),
      'p99 attacked ms': fmt(attacked.p99, 3),
      'p99 ratio': fmt(ratio, 3),
      'yield after': pct(after.yield),
      detection: detection.length > 0 ? detection.map((ms) => `${fmt(ms, 2)} ms`).join(', ') : '',
      load: fmt(load, 2),
      goal: met ? 'met' : 'not met',
    });
    details.push({ scenario: scenario.name, what: scenario.what, load, quiet, attacked, after, measured });
    printTable('so far', rows.slice(-1));
  }
} finally {
  await redis.stop();
}

function pct(value: number): string {
  return `${(value * 100).toFixed(2)}%`;
}

const loadAfter = loadavg()[0] ?? 0;
printTable('Well-behaved client beside each attack (and without it, on the same system)', rows);
if (only !== undefined) process.exit(0);
writeResult('attacks.json', { machine: machine(), ratePerSec, runMs, rounds, quick, loadBefore, loadAfter, rows, details });
writeResult(
  'attacks.md',
  [
    '# Attacks: a well-behaved client beside a hostile one',
    '',
    `\`npm run bench:attacks${quick ? ' -- --quick' : ''}\` — ${machine().cpus} cores (${machine().cpuModel}), Node ${machine().node}, ${machine().date}; 1-minute load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after.`,
    `Well-behaved client: ${ratePerSec} req/s from 127.0.0.1; per attack a fresh system, ${rounds} × (${runMs / 1000} s quiet, ${runMs / 1000} s attacked from 127.0.0.2, ${runMs / 1000} s after it stopped). API servers with the cost budget recommended for anonymous clients (each address: ${EDGE_BUDGET.BALLAST_API_ANONYMOUS_COST_MS_PER_SEC} ms/s of indicative conversion time, ${EDGE_BUDGET.BALLAST_API_ANONYMOUS_COST_BURST_MS} ms at once); the worker at nice ${WORKER_NICE} (below the request path it shares the cores with). Goal: yield ≥ 99.9% and p99 ≤ 1.5 × the quiet run. \`load\`: 1-minute load average when the system started (other work shares this machine).`,
    '',
    markdownTable(rows),
    '',
    ...scenarios.map((s) => `- **${s.name}**: ${s.what}.`),
    '',
  ].join('\n'),
);
