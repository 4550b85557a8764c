/**
 * The system under the observability benchmark, in its own process: gateway, three API
 * servers and one worker on the in-process queue, with observability as the parent asks
 * (`BALLAST_BENCH_OBSERVE`):
 * - `on`: the gateway's front-door SLIs, stage histograms, timelines and dashboard sampler,
 *   and every service logging at `info` (one JSON line per request and per job) to a file;
 * - `off`: those turned off (`observability: false`) and the logs silent.
 * The services' base request counters (`ballast_*_requests_total`) stay in both.
 * Talks to the benchmark over IPC (benchmarks/lib/system-process.ts).
 */
import { createWriteStream } from 'node:fs';
import { createLogger, silentLogger } from '@ballast/app-shared';
import { startSystem } from '@ballast/app-system';
import { serveOverIpc } from '../lib/system-process.ts';

// `metrics` and `logs` turn on one half alone, to see where a cost comes from.
const mode = process.env.BALLAST_BENCH_OBSERVE ?? 'off';
const logFile = process.env.BALLAST_BENCH_LOG ?? '/dev/null';
const logs = mode === 'on' || mode === 'logs' ? createWriteStream(logFile, { flags: 'a' }) : undefined;
const system = await startSystem({
  apis: 3,
  workers: 1,
  logger: logs ? createLogger({ level: 'info', destination: logs }) : silentLogger(),
  // The load generator stands for many clients from one loopback address: no per-address rate limit.
  gateway: { rateLimit: false, ...(mode === 'on' || mode === 'metrics' ? {} : { observability: false }) },
});
serveOverIpc(system.url, async () => {
  await system.close();
  logs?.end();
});
