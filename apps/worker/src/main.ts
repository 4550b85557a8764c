/**
 * Runs one resize worker process against the queue the environment names (see
 * `queueFromEnv` in @ballast/app-queue), with `/healthz`, `/readyz` and `/metrics` on
 * `BALLAST_WORKER_PORT` (default 0: a free port, printed at start). SIGTERM/SIGINT
 * finish the jobs in progress, then exit.
 *
 *   BALLAST_REDIS_SENTINELS=127.0.0.1:26379 npx node --conditions=@ballast/source apps/worker/src/main.ts
 */

import { hostname } from 'node:os';
import { jsonLines, queueFromEnv } from '@ballast/app-queue';
import { logDirFor, openRecorder, usageConfig } from '@ballast/app-usage';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { workerMetrics } from './metrics.ts';
import { logWorker, ResizeWorker } from './worker.ts';

const queue = queueFromEnv();
const concurrency = process.env.BALLAST_WORKER_CONCURRENCY ? Number(process.env.BALLAST_WORKER_CONCURRENCY) : undefined;
const maxAvifOutputPixels = process.env.BALLAST_WORKER_MAX_AVIF_OUTPUT_PIXELS
  ? Number(process.env.BALLAST_WORKER_MAX_AVIF_OUTPUT_PIXELS)
  : undefined;
const name = process.env.BALLAST_WORKER_NAME || `worker-${hostname()}-${process.pid}`;
// Usage: each finished job is recorded in this process's fsync'd log before it is acknowledged.
const usageSettings = usageConfig();
const usage = await openRecorder({
  dir: logDirFor(usageSettings, name),
  store: usageSettings.ship === 'in-process' ? usageSettings.database : undefined,
  adoptFrom: usageSettings.logRoot,
  shipper: { intervalMs: usageSettings.shipIntervalMs, batchRecords: usageSettings.batchRecords },
});
const worker = new ResizeWorker({ queue, concurrency, name, limits: { maxAvifOutputPixels }, recordUsage: (u) => usage.append(u) });
const registry = workerMetrics(worker);
logWorker(worker, jsonLines());
worker.start();

const app = new Hono();
app.get('/healthz', (c) => c.json({ ok: true }));
app.get('/readyz', async (c) => {
  try {
    await queue.ping();
    return c.json({ ready: true, queue: queue.kind });
  } catch (error) {
    return c.json({ ready: false, error: String(error) }, 503);
  }
});
app.get('/metrics', async (c) => c.text(await registry.metrics(), 200, { 'content-type': registry.contentType }));
const server = serve({ fetch: app.fetch, port: Number(process.env.BALLAST_WORKER_PORT ?? 0), hostname: '127.0.0.1' }, (info) => {
  console.log(
    JSON.stringify({
      level: 'info',
      service: 'worker',
      worker: worker.name,
      concurrency: worker.concurrency,
      queue: queue.kind,
      port: info.port,
    }),
  );
});

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  await worker.close();
  await usage.close();
  await queue.close();
  server.close();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
