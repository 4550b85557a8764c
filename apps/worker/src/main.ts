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
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { workerMetrics } from './metrics.ts';
import { logWorker, ResizeWorker } from './worker.ts';

// The worker's name is its member id in the queue: its heartbeats carry it, and a worker
// whose heartbeats stop has its jobs reclaimed at once (apps/README.md, queue).
const workerName = process.env.BALLAST_WORKER_NAME || `worker-${hostname()}-${process.pid}`;
const queue = queueFromEnv(process.env, { member: workerName });
const concurrency = process.env.BALLAST_WORKER_CONCURRENCY ? Number(process.env.BALLAST_WORKER_CONCURRENCY) : undefined;
const maxAvifOutputPixels = process.env.BALLAST_WORKER_MAX_AVIF_OUTPUT_PIXELS
  ? Number(process.env.BALLAST_WORKER_MAX_AVIF_OUTPUT_PIXELS)
  : undefined;
const worker = new ResizeWorker({
  queue,
  concurrency,
  name: workerName,
  limits: { maxAvifOutputPixels },
});
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
  await queue.close();
  server.close();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
