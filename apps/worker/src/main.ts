/**
 * Runs one resize worker process against the queue the environment names (see
 * `queueFromEnv` in @ballast/app-queue), with `/healthz`, `/readyz` and `/metrics` on
 * its operational listener, `BALLAST_WORKER_PORT` (default 0: a free port, printed at
 * start). Every `BALLAST_*` variable is validated first. SIGTERM/SIGINT finish the jobs
 * in progress, then exit.
 *
 *   BALLAST_REDIS_SENTINELS=127.0.0.1:26379 npx node --conditions=@ballast/source apps/worker/src/main.ts
 */

import { hostname } from 'node:os';
import { queueFromEnv } from '@ballast/app-queue';
import { IMAGE_ENV, listen, onShutdown, operationalApp, QUEUE_ENV, startService, USAGE_ENV, WORKER_ENV } from '@ballast/app-shared';
import { logDirFor, openRecorder, usageConfig } from '@ballast/app-usage';
import { workerMetrics } from './metrics.ts';
import { lowerPriority } from './priority.ts';
import { logWorker, ResizeWorker } from './worker.ts';

const { env, logger } = startService('worker', { ...QUEUE_ENV, ...IMAGE_ENV, ...WORKER_ENV, ...USAGE_ENV });
// Conversions below the request path where they share cores (apps/README.md, worker).
if (env.BALLAST_WORKER_NICE) lowerPriority(env.BALLAST_WORKER_NICE);
// The worker's name is its member id in the queue: its heartbeats carry it, and a worker
// whose heartbeats stop has its jobs reclaimed at once (apps/README.md, queue).
const workerName = env.BALLAST_WORKER_NAME ?? `worker-${hostname()}-${process.pid}`;
const queue = queueFromEnv(process.env, { member: workerName });
// Usage: each finished job is recorded in this process's fsync'd log before it is acknowledged.
const usageSettings = usageConfig();
const usage = await openRecorder({
  dir: logDirFor(usageSettings, workerName),
  store: usageSettings.ship === 'in-process' ? usageSettings.database : undefined,
  adoptFrom: usageSettings.logRoot,
  shipper: { intervalMs: usageSettings.shipIntervalMs, batchRecords: usageSettings.batchRecords },
});
const worker = new ResizeWorker({
  queue,
  concurrency: env.BALLAST_WORKER_CONCURRENCY,
  name: workerName,
  limits: {
    maxAvifOutputPixels: env.BALLAST_WORKER_MAX_AVIF_OUTPUT_PIXELS,
    timeoutMs: env.BALLAST_WORKER_TIMEOUT_MS,
    inputFormats: env.BALLAST_INPUT_FORMATS,
  },
  recordUsage: (u) => usage.append(u),
});
const registry = workerMetrics(worker);
logWorker(worker, logger);
worker.start();

const ops = operationalApp({
  service: worker.name,
  registry,
  ready: async () => {
    try {
      await queue.ping();
      return { ready: true, queue: queue.kind };
    } catch {
      return { ready: false, queue: queue.kind };
    }
  },
});
const server = await listen(ops.fetch, { port: env.BALLAST_WORKER_PORT });
console.log(
  JSON.stringify({
    level: 'info',
    service: 'worker',
    worker: worker.name,
    concurrency: worker.concurrency,
    queue: queue.kind,
    port: server.port,
  }),
);

onShutdown(async () => {
  await worker.close();
  await usage.close();
  await queue.close();
  await server.close();
});
