/**
 * Runs one API server against the queue the environment names (see `queueFromEnv`
 * in @ballast/app-queue) on `BALLAST_API_PORT` (default 8081). Workers run as their
 * own processes (apps/worker/src/main.ts).
 *
 *   BALLAST_REDIS_SENTINELS=127.0.0.1:26379 npx node --conditions=@ballast/source apps/api/src/main.ts
 */
import { queueFromEnv } from '@ballast/app-queue';
import { createApi } from './app.ts';
import { listen } from './serve.ts';

const queue = queueFromEnv();
const name = process.env.BALLAST_API_NAME ?? 'api';
const api = createApi({ queue, name });
const server = await listen(api.app.fetch, Number(process.env.BALLAST_API_PORT ?? 8081), process.env.BALLAST_API_HOST ?? '127.0.0.1');
console.log(JSON.stringify({ level: 'info', service: 'api', url: server.url, queue: queue.kind }));

const drainMs = Number(process.env.BALLAST_API_DRAIN_MS ?? 3000);
let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) return;
  stopping = true;
  // Out of the gateway's rotation first (health checks fail), then close.
  api.drain();
  console.log(JSON.stringify({ time: new Date().toISOString(), level: 'info', service: name, msg: 'draining', drainMs }));
  await new Promise((r) => setTimeout(r, drainMs));
  await server.close();
  await api.close();
  await queue.close();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
