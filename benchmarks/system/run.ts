/**
 * `npm run bench:system`: the reference system under load, against sharp alone.
 *
 * 1. sharp direct: the worker's conversion (256 KB JPEG → 800 px JPEG) in this process,
 *    one conversion per core at a time, for a fixed time: conversions per second and
 *    per CPU-second.
 * 2. The system (server.ts in a child process: gateway → 3 API servers → in-process
 *    queue → worker) driven to saturation by a closed loop of clients: its capacity,
 *    and requests per CPU-second of the system process — once with Node's default heap,
 *    once with a larger initial old space. The ratio to (1) is the goal
 *    "throughput per core ≥ 0.8 × sharp direct".
 * 3. Open-loop load (Poisson arrivals, no coordinated omission) at 50/80/100/150% of
 *    the measured capacity: p50/p99/p99.9 of admitted requests, and how many were shed.
 *
 * Bounded: about a minute and a half. Results go to benchmarks/results/system.{json,md}.
 */
import { fork } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseResizeParams } from '@ballast/app-queue';
import { resizeImage, resolveLimits, sampleJpeg } from '@ballast/app-worker';
import sharp from 'sharp';
import { openLoop } from '../lib/open-loop.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';

const cores = availableParallelism();
const quick = process.argv.includes('--quick');
const phaseMs = quick ? 4000 : 10_000;
const loadBefore = loadavg()[0] ?? 0;
const image = await sampleJpeg();
const query = 'width=800&format=jpeg&quality=80';
const params = parseResizeParams({ width: 800, format: 'jpeg', quality: 80 });
console.log(`Input: ${Math.round(image.length / 1024)} KB JPEG 1600×1200 → 800 px JPEG. ${cores} cores. ${phaseMs / 1000} s per phase.`);

const cpuNow = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

// 1. sharp direct, the way the worker calls it.
sharp.concurrency(1);
sharp.cache(false);
const limits = resolveLimits();
for (let i = 0; i < 5; i++) await resizeImage(image, params, limits); // warm up
let directCount = 0;
const directStart = performance.now();
const directCpu0 = cpuNow();
await Promise.all(
  Array.from({ length: cores }, async () => {
    while (performance.now() - directStart < phaseMs) {
      await resizeImage(image, params, limits);
      directCount++;
    }
  }),
);
const directSeconds = (performance.now() - directStart) / 1000;
const directCpuSeconds = (cpuNow() - directCpu0) / 1000;
const direct = { perSecond: directCount / directSeconds, perCpuSecond: directCount / directCpuSeconds, conversions: directCount };
console.log(`sharp direct: ${fmt(direct.perSecond)}/s, ${fmt(direct.perCpuSecond)} per CPU-second`);

// 2. The system in a child process, started with the given Node flags.
interface Server {
  url: string;
  cpuMs(): Promise<number>;
  stop(): Promise<void>;
}
async function startServer(flags: string[]): Promise<Server> {
  const child = fork(fileURLToPath(new URL('./server.ts', import.meta.url)), [], {
    execArgv: ['--conditions=@ballast/source', ...flags],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const messages: Array<(m: { type: string; url?: string; ms?: number }) => void> = [];
  child.on('message', (m: { type: string }) => messages.shift()?.(m));
  const next = (): Promise<{ type: string; url?: string; ms?: number }> => new Promise((resolve) => messages.push(resolve));
  const { url = '' } = await next();
  return {
    url,
    async cpuMs() {
      const reply = next();
      child.send({ type: 'cpu' });
      return (await reply).ms ?? 0;
    },
    async stop() {
      child.send({ type: 'stop' });
      await new Promise((r) => child.once('exit', r));
    },
  };
}
const sender =
  (url: string) =>
  async (signal?: AbortSignal): Promise<number> => {
    const res = await fetch(`${url}/v1/resize?${query}`, {
      method: 'POST',
      body: image,
      headers: { 'content-type': 'image/jpeg' },
      signal,
    });
    await res.arrayBuffer();
    return res.status;
  };

/** Saturates the system with a closed loop of clients: requests per second and per CPU-second of the system process. */
async function saturate(server: Server, label: string) {
  const send = sender(server.url);
  for (let i = 0; i < 20; i++) await send(); // warm up
  const clients = cores * 2 + 1; // enough to keep every worker slot busy, few enough not to be shed
  let ok = 0;
  let other = 0;
  const start = performance.now();
  const cpu0 = await server.cpuMs();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() - start < phaseMs) {
        if ((await send()) === 200) ok++;
        else other++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  const systemCpuSeconds = ((await server.cpuMs()) - cpu0) / 1000;
  const result = { perSecond: ok / seconds, perCpuSecond: ok / systemCpuSeconds, ok, other, systemCpuSeconds };
  console.log(
    `${label}: ${fmt(result.perSecond)}/s at saturation (${clients} clients, ${other} non-200), ${fmt(result.perCpuSecond)} per CPU-second`,
  );
  return result;
}

// Node's default heap starts small, and the services' request churn then runs a full
// GC several times a second; a larger initial old space (a deployment setting) avoids it.
const TUNED = ['--initial-old-space-size=128'];
const plain = await startServer([]);
let systemDefault: Awaited<ReturnType<typeof saturate>>;
try {
  systemDefault = await saturate(plain, 'system (default heap)');
} finally {
  await plain.stop();
}
const server = await startServer(TUNED);
const send = sender(server.url);
try {
  const system = await saturate(server, `system (${TUNED.join(' ')})`);
  const capacity = system.perSecond;
  const throughputRows: Row[] = [
    { path: 'sharp direct (one process)', 'req/s': direct.perSecond, 'req per CPU-s': direct.perCpuSecond, ratio: 1 },
    {
      path: 'system, default Node heap',
      'req/s': systemDefault.perSecond,
      'req per CPU-s': systemDefault.perCpuSecond,
      ratio: systemDefault.perCpuSecond / direct.perCpuSecond,
    },
    {
      path: `system, ${TUNED.join(' ')}`,
      'req/s': system.perSecond,
      'req per CPU-s': system.perCpuSecond,
      ratio: system.perCpuSecond / direct.perCpuSecond,
    },
  ];
  printTable('Throughput (ratio = requests per CPU-second relative to sharp direct; goal ≥ 0.8)', throughputRows);

  // 3. Open loop at fractions of capacity.
  const levels = [0.5, 0.8, 1, 1.5];
  const latencyRows: Row[] = [];
  for (const level of levels) {
    await new Promise((r) => setTimeout(r, 1000)); // let the queue drain
    const rate = capacity * level;
    const result = await openLoop(async (_i, signal) => ({ status: await send(signal) }), {
      ratePerSec: rate,
      durationMs: phaseMs,
      arrivals: 'poisson',
      maxInFlight: 2000,
      warmupMs: 1000,
    });
    const okStats = result.byStatus['200'];
    const shed = result.byStatus['503']?.count ?? 0;
    const row: Row = {
      load: `${Math.round(level * 100)}%`,
      'offered/s': rate,
      'served/s': (okStats?.count ?? 0) / ((phaseMs - 1000) / 1000),
      'p50 ms': okStats?.latency.p50,
      'p99 ms': okStats?.latency.p99,
      'p99.9 ms': okStats?.latency.p999,
      'shed %': (shed / Math.max(1, result.completed + result.failed)) * 100,
      'other errors': result.completed - (okStats?.count ?? 0) - shed + result.failed + result.dropped,
    };
    latencyRows.push(row);
    console.log(
      `  ${row.load}: p50 ${fmt(row['p50 ms'] as number)} ms, p99 ${fmt(row['p99 ms'] as number)} ms, shed ${fmt(row['shed %'] as number)}%`,
    );
  }
  printTable(
    'Latency of admitted (200) requests under open-loop Poisson load, % of measured capacity (goal: p99 < 500 ms at 80%)',
    latencyRows,
  );

  const load = { before: loadBefore, after: loadavg()[0] ?? 0 };
  const data = {
    machine: machine(),
    loadAverage: load,
    input: { bytes: image.length, query },
    phaseMs,
    direct,
    system,
    latency: latencyRows,
  };
  writeResult('system.json', data);
  const md = [
    `Measured on ${cores} cores (${machine().cpuModel}), Node ${process.version}, ${phaseMs / 1000} s per phase, \`npm run bench:system\`;`,
    `1-minute load average ${fmt(load.before)} before and ${fmt(load.after)} after the run (above ${cores}: other processes competed for the cores).`,
    '',
    markdownTable(throughputRows),
    '',
    markdownTable(latencyRows),
    '',
  ].join('\n');
  writeResult('system.md', md);
  console.log('\nWrote benchmarks/results/system.json and system.md');
} finally {
  await server.stop();
}
