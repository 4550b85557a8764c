/**
 * `npm run bench:observability`: what the observability costs. The reference system
 * (server.ts, in two child processes started alike) saturated by a closed loop of
 * clients, once with observability on (front-door SLIs, stage histograms, timelines, the
 * dashboard sampler, logs at `info` to a file) and once with it off, in alternating
 * rounds so that a change in the machine's load hits both alike. Throughput per CPU-second
 * of each system process is the per-core figure; the goal is "on" within 3% of "off".
 *
 * Bounded: about a minute (`-- --quick`: about 25 s). Results go to
 * benchmarks/results/observability.{json,md}.
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FrontDoor } from '@ballast/app-gateway';
import { createLogger } from '@ballast/app-shared';
import { sampleJpeg } from '@ballast/app-worker';
import { Registry } from 'prom-client';
import { publishFigures } from '../lib/figures.ts';
import { median } from '../lib/measure.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import { forkSystem, resizeSender, type SystemProcess, saturate, type Throughput } from '../lib/system-process.ts';

const cores = availableParallelism();
const quick = process.argv.includes('--quick');
const rounds = quick ? 2 : 5;
const roundMs = quick ? 4000 : 6000;
const loadBefore = loadavg()[0] ?? 0;
const image = await sampleJpeg();
const query = 'width=800&format=jpeg&quality=80';
const dir = mkdtempSync(join(tmpdir(), 'ballast-bench-observe-'));
const logFile = join(dir, 'services.log');

type Server = SystemProcess;
const startServer = (observe: 'on' | 'off'): Promise<Server> =>
  forkSystem(new URL('./server.ts', import.meta.url), ['--initial-old-space-size=128'], {
    ...process.env,
    BALLAST_BENCH_OBSERVE: observe,
    BALLAST_BENCH_LOG: logFile,
  });

const sendTo = (server: Server): (() => Promise<number>) => resizeSender(server.url, image, query);

/**
 * The direct CPU cost per request, measured in this process where the machine's load
 * cannot swamp it: one front-door record (counters, latency, harvest and six stage
 * histograms, the live window, the timeline) and the three log lines a request writes
 * (gateway, API server, worker), to a file.
 */
function directCostUs(): { recordUs: number; logsUs: number } {
  const frontDoor = new FrontDoor({ registry: new Registry() });
  const stages = { gateway: 2, admission: 0.3, enqueue: 0.8, queue_wait: 4, conversion: 20, response: 0.5 };
  const n = 50_000;
  const time = (fn: (i: number) => void): number => {
    for (let i = 0; i < 2000; i++) fn(i); // warm up
    const t0 = process.cpuUsage();
    for (let i = 0; i < n; i++) fn(i);
    const { user, system } = process.cpuUsage(t0);
    return (user + system) / n;
  };
  const recordUs = time((i) =>
    frontDoor.record({
      requestId: `r${i}`,
      at: Date.now(),
      method: 'POST',
      path: '/v1/resize',
      route: 'resize',
      status: 200,
      outcome: 'success',
      tenant: `t${i % 30}`,
      size: 'under_1mb',
      upstream: 'api-1',
      durationMs: 20 + (i % 50),
      harvest: 1,
      stages,
    }),
  );
  frontDoor.close();
  const logger = createLogger({ level: 'info', destination: createWriteStream(join(dir, 'direct.log')) });
  const gateway = logger.child({ service: 'gateway' });
  const api = logger.child({ service: 'api-1' });
  const worker = logger.child({ service: 'worker' });
  const logsUs = time((i) => {
    const requestId = `r${i}`;
    gateway
      .child({ requestId })
      .info(
        { method: 'POST', path: '/v1/resize', status: 200, ms: 41.2, upstream: 'api-1', outcome: 'success', tenant: 'anonymous', stages },
        'request',
      );
    api
      .child({ requestId })
      .info(
        { method: 'POST', path: '/v1/resize', status: 200, ms: 39.8, jobId: 'job', tenant: 'anonymous', mode: 'sync', stages },
        'request',
      );
    worker.info(
      {
        jobId: 'job',
        requestId,
        worker: 'worker-1-0',
        cpuMs: 23.4,
        wallMs: 26.1,
        queuedMs: 0.3,
        bytesIn: 265042,
        bytesOut: 29512,
        format: 'jpeg',
        width: 800,
        height: 600,
      },
      'job done',
    );
  });
  return { recordUs, logsUs };
}

const direct = directCostUs();
console.log(`Direct CPU per request: front-door record ${fmt(direct.recordUs)} µs, three log lines ${fmt(direct.logsUs)} µs.`);
console.log(
  `Observability on vs off: ${rounds} alternating round(s) of ${roundMs / 1000} s each, ${cores} cores, ${Math.round(image.length / 1024)} KB JPEG → 800 px.`,
);
const on = await startServer('on');
const off = await startServer('off');
try {
  for (const server of [on, off]) for (let i = 0; i < 20; i++) await sendTo(server)(); // warm up
  const results = { on: [] as Throughput[], off: [] as Throughput[] };
  for (let round = 1; round <= rounds; round++) {
    // Alternate which goes first, so neither always runs right after the other.
    const order: Array<['on' | 'off', Server]> =
      round % 2
        ? [
            ['off', off],
            ['on', on],
          ]
        : [
            ['on', on],
            ['off', off],
          ];
    for (const [name, server] of order) results[name].push(await saturate(server, sendTo(server), cores * 4, roundMs));
    const [a, b] = [results.on.at(-1), results.off.at(-1)] as Throughput[];
    console.log(
      `round ${round}: on ${fmt(a?.perCpuSecond)} req/CPU-s, off ${fmt(b?.perCpuSecond)} req/CPU-s, on/off ${fmt((a?.perCpuSecond ?? 0) / (b?.perCpuSecond ?? 1))}; non-200: ${a?.other}, ${b?.other}`,
    );
  }
  const ratios = results.on.map((r, i) => r.perCpuSecond / (results.off[i]?.perCpuSecond ?? 1));
  const row = (path: string, runs: Throughput[], r?: number[]): Row => ({
    system: path,
    'req/s': median(runs.map((x) => x.perSecond)),
    'req per CPU-s': median(runs.map((x) => x.perCpuSecond)),
    'on / off (median)': r ? median(r) : 1,
    'range over rounds': r ? `${fmt(Math.min(...r))}–${fmt(Math.max(...r))}` : '—',
  });
  const rows = [row('observability off, logs silent', results.off), row('observability on, logs at info', results.on, ratios)];
  const cpuPerRequestUs = 1e6 / median(results.off.map((x) => x.perCpuSecond));
  const directShare = (direct.recordUs + direct.logsUs) / cpuPerRequestUs;
  printTable(`Throughput per CPU-second, median of ${rounds} alternating rounds (goal: on within 3% of off, ratio ≥ 0.97)`, rows);
  const logBytes = statSync(logFile).size;
  const requests = results.on.reduce((n, r) => n + r.ok + r.other, 0) + 20;
  const load = { before: loadBefore, after: loadavg()[0] ?? 0 };
  writeResult('observability.json', {
    machine: machine(),
    quick,
    loadAverage: load,
    rounds,
    roundMs,
    input: { bytes: image.length, query },
    results,
    ratios,
    logBytes,
    direct: { ...direct, cpuPerRequestUs, share: directShare },
  });
  writeResult(
    'observability.md',
    [
      `Measured on ${cores} cores (${machine().cpuModel}), Node ${process.version}, \`npm run bench:observability\`: ${rounds} alternating rounds of ${roundMs / 1000} s per contender;`,
      `1-minute load average ${fmt(load.before)} before and ${fmt(load.after)} after the run (above ${cores}: other processes competed for the cores).`,
      `Logs written with observability on: ${Math.round(logBytes / 1024)} KB, about ${Math.round(logBytes / Math.max(1, requests))} bytes per request (three lines: gateway, API server, worker).`,
      `Direct CPU per request, measured in the benchmark process: front-door record ${fmt(direct.recordUs)} µs + three log lines ${fmt(direct.logsUs)} µs = ${fmt(directShare * 100)}% of the ${fmt(cpuPerRequestUs / 1000)} ms of CPU a request costs the system with observability off in this run.`,
      '',
      markdownTable(rows),
      '',
    ].join('\n'),
  );
  await publishFigures('observability');
  console.log(
    `Direct cost: ${fmt(direct.recordUs + direct.logsUs)} µs per request, ${fmt(directShare * 100)}% of ${fmt(cpuPerRequestUs / 1000)} ms.`,
  );
  console.log(
    `\nLogs: ${Math.round(logBytes / 1024)} KB (~${Math.round(logBytes / Math.max(1, requests))} B/request). Wrote benchmarks/results/observability.json and observability.md`,
  );
} finally {
  await on.stop();
  await off.stop();
  rmSync(dir, { recursive: true, force: true });
}
