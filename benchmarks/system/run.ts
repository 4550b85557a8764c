/**
 * `npm run bench:system`: the reference system under load, against sharp alone.
 *
 * 1. Throughput, in alternating rounds so that a change in the machine's load hits
 *    every contender alike:
 *    - sharp direct: the worker's conversion (256 KB JPEG → 800 px JPEG) in this process,
 *      one conversion per core at a time;
 *    - the system (server.ts in a child process: gateway → 3 API servers → in-process
 *      queue → worker) saturated by a closed loop of clients, once with Node's default
 *      heap and once with a larger initial old space.
 *    Each reports requests per second and per CPU-second of its own process; the ratio
 *    of the latter to sharp direct, per round, is the goal "throughput per core ≥ 0.8".
 * 2. Open-loop load (Poisson arrivals, no coordinated omission) at 50/80/100/150% of the
 *    measured capacity: p50/p99/p99.9 of admitted requests, and how many were shed.
 *
 * Bounded: about two minutes (`-- --quick`: about 40 s). Results go to
 * benchmarks/results/system.{json,md}.
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseResizeParams } from '@ballast/app-queue';
import { resizeImage, resolveLimits, sampleJpeg } from '@ballast/app-worker';
import sharp from 'sharp';
import { median } from '../lib/measure.ts';
import { openLoop } from '../lib/open-loop.ts';
import { fmt, machine, markdownTable, printTable, type Row, writeResult } from '../lib/report.ts';
import { forkSystem, resizeSender, type SystemProcess, saturate, type Throughput } from '../lib/system-process.ts';

const cores = availableParallelism();
const quick = process.argv.includes('--quick');
const rounds = quick ? 1 : 3;
const roundMs = quick ? 4000 : 6000;
const latencyMs = quick ? 4000 : 10_000;
const loadBefore = loadavg()[0] ?? 0;
const image = await sampleJpeg();
const query = 'width=800&format=jpeg&quality=80';
const params = parseResizeParams({ width: 800, format: 'jpeg', quality: 80 });
console.log(
  `Input: ${Math.round(image.length / 1024)} KB JPEG 1600×1200 → 800 px JPEG. ${cores} cores. ${rounds} round(s) of ${roundMs / 1000} s per contender.`,
);

const cpuNow = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

// sharp direct, the way the worker calls it.
sharp.concurrency(1);
sharp.cache(false);
const limits = resolveLimits();
for (let i = 0; i < 5; i++) await resizeImage(image, params, limits); // warm up
async function direct(): Promise<Throughput> {
  let ok = 0;
  const start = performance.now();
  const cpu0 = cpuNow();
  await Promise.all(
    Array.from({ length: cores }, async () => {
      while (performance.now() - start < roundMs) {
        await resizeImage(image, params, limits);
        ok++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  return { perSecond: ok / seconds, perCpuSecond: ok / ((cpuNow() - cpu0) / 1000), ok, other: 0 };
}

// The system in a child process, started with the given Node flags.
type Server = SystemProcess;
const startServer = (flags: string[]): Promise<Server> => forkSystem(new URL('./server.ts', import.meta.url), flags);
const sender = (url: string) => resizeSender(url, image, query);
// A closed loop of clients: cores × 4 keeps every worker slot busy while the other requests cross the HTTP hops.
const saturateRound = (server: Server): Promise<Throughput> => saturate(server, sender(server.url), cores * 4, roundMs);

// Node's default heap starts small, and the services' request churn then runs a full
// GC several times a second; a larger initial old space (a deployment setting) avoids it.
const TUNED = ['--initial-old-space-size=128'];
const plain = await startServer([]);
const tuned = await startServer(TUNED);
const send = sender(tuned.url);
try {
  for (const server of [plain, tuned]) for (let i = 0; i < 20; i++) await sender(server.url)(); // warm up
  const results = { direct: [] as Throughput[], plain: [] as Throughput[], tuned: [] as Throughput[] };
  for (let round = 1; round <= rounds; round++) {
    results.direct.push(await direct());
    results.plain.push(await saturateRound(plain));
    results.tuned.push(await saturateRound(tuned));
    const [d, p, t] = [results.direct.at(-1), results.plain.at(-1), results.tuned.at(-1)] as Throughput[];
    console.log(
      `round ${round}: direct ${fmt(d?.perCpuSecond)}/CPU-s, default heap ${fmt(p?.perCpuSecond)} (${fmt((p?.perCpuSecond ?? 0) / (d?.perCpuSecond ?? 1))}), ` +
        `tuned ${fmt(t?.perCpuSecond)} (${fmt((t?.perCpuSecond ?? 0) / (d?.perCpuSecond ?? 1))}); non-200: ${p?.other}, ${t?.other}`,
    );
  }
  await plain.stop();
  const ratios = (runs: Throughput[]): number[] => runs.map((r, i) => r.perCpuSecond / (results.direct[i]?.perCpuSecond ?? 1));
  const row = (path: string, runs: Throughput[]): Row => {
    const r = ratios(runs);
    return {
      path,
      'req/s': median(runs.map((x) => x.perSecond)),
      'req per CPU-s': median(runs.map((x) => x.perCpuSecond)),
      ratio: median(r),
      'ratio range': `${fmt(Math.min(...r))}–${fmt(Math.max(...r))}`,
    };
  };
  const throughputRows: Row[] = [
    row('sharp direct (one process)', results.direct),
    row('system, default Node heap', results.plain),
    row(`system, ${TUNED.join(' ')}`, results.tuned),
  ];
  printTable(
    `Throughput, median of ${rounds} round(s) (ratio = requests per CPU-second relative to sharp direct in the same round; goal ≥ 0.8)`,
    throughputRows,
  );

  // Open loop at fractions of capacity.
  const capacity = median(results.tuned.map((x) => x.perSecond));
  const levels = [0.5, 0.8, 1, 1.5];
  const latencyRows: Row[] = [];
  for (const level of levels) {
    await new Promise((r) => setTimeout(r, 1000)); // let the queue drain
    const rate = capacity * level;
    const result = await openLoop(async (_i, signal) => ({ status: await send(signal) }), {
      ratePerSec: rate,
      durationMs: latencyMs,
      arrivals: 'poisson',
      maxInFlight: 2000,
      warmupMs: 1000,
    });
    const okStats = result.byStatus['200'];
    const shed = result.byStatus['503']?.count ?? 0;
    const latency: Row = {
      load: `${Math.round(level * 100)}%`,
      'offered/s': rate,
      'served/s': (okStats?.count ?? 0) / ((latencyMs - 1000) / 1000),
      'p50 ms': okStats?.latency.p50,
      'p99 ms': okStats?.latency.p99,
      'p99.9 ms': okStats?.latency.p999,
      'shed %': (shed / Math.max(1, result.completed + result.failed)) * 100,
      'other errors': result.completed - (okStats?.count ?? 0) - shed + result.failed + result.dropped,
    };
    latencyRows.push(latency);
    console.log(
      `  ${latency.load}: p50 ${fmt(latency['p50 ms'] as number)} ms, p99 ${fmt(latency['p99 ms'] as number)} ms, shed ${fmt(latency['shed %'] as number)}%`,
    );
  }
  printTable(
    `Latency of admitted (200) requests under open-loop Poisson load, % of measured capacity, ${TUNED.join(' ')} (goal: p99 < 500 ms at 80%)`,
    latencyRows,
  );

  const load = { before: loadBefore, after: loadavg()[0] ?? 0 };
  const data = {
    machine: machine(),
    loadAverage: load,
    input: { bytes: image.length, query },
    rounds,
    roundMs,
    latencyMs,
    results,
    latency: latencyRows,
  };
  writeResult('system.json', data);
  const md = [
    `Measured on ${cores} cores (${machine().cpuModel}), Node ${process.version}, \`npm run bench:system\`: ${rounds} round(s) of ${roundMs / 1000} s per contender, ${latencyMs / 1000} s per load level;`,
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
  await plain.stop();
  await tuned.stop();
}
