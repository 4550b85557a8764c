/**
 * Runs one API server against the queue the environment names (see `queueFromEnv`
 * in @ballast/app-queue): the public API on `BALLAST_API_PORT` (default 8081), the
 * operational listener (`/healthz`, `/readyz`, `/metrics`) on `BALLAST_API_OPS_PORT`
 * (default a free port, printed at start). Every `BALLAST_*` variable is validated
 * first. Workers run as their own processes (apps/worker/src/main.ts).
 *
 *   BALLAST_REDIS_SENTINELS=127.0.0.1:26379 npx node --conditions=@ballast/source apps/api/src/main.ts
 */
import { queueFromEnv } from '@ballast/app-queue';
import { API_ENV, IDENTITY_ENV, IMAGE_ENV, listen, onShutdown, QUEUE_ENV, startService, USAGE_ENV } from '@ballast/app-shared';
import { UsageStore, usageConfig } from '@ballast/app-usage';
import { createApi } from './app.ts';
import { fairShareFromEnv } from './env.ts';
import { apiIdentityFromEnv } from './identity.ts';

const { env, logger } = startService('api', { ...QUEUE_ENV, ...IMAGE_ENV, ...API_ENV, ...IDENTITY_ENV, ...USAGE_ENV });
const queue = queueFromEnv();
// GET /v1/usage reads the usage batch store: served when it is a PostgreSQL server (a PGlite
// directory belongs to the one process that opened it).
const usageDatabase = usageConfig().database;
const usageStore = /^postgres(ql)?:\/\//.test(usageDatabase) ? await UsageStore.open({ database: usageDatabase }) : undefined;
const name = env.BALLAST_API_NAME;
// BALLAST_API_IDENTITY=true: every request needs an API key, verified from the identity feed on Redis.
const identity = env.BALLAST_API_IDENTITY ? await apiIdentityFromEnv(process.env, env.BALLAST_API_WORKER_SLOTS) : undefined;
// Per-client fair share of the workers, counted over every API server through the queue's Redis.
const fairShare = fairShareFromEnv(env, env.BALLAST_API_WORKER_SLOTS);
const api = createApi({
  queue,
  name,
  logger,
  ...(identity && { identity: identity.identity, quotas: identity.quotas, authenticate: identity.authenticate }),
  ...(usageStore ? { usage: { store: usageStore } } : {}),
  maxInflight: env.BALLAST_API_MAX_INFLIGHT,
  maxBodyBytes: env.BALLAST_API_MAX_BODY_BYTES,
  defaultDeadlineMs: env.BALLAST_API_DEFAULT_DEADLINE_MS,
  enqueueRetryMs: env.BALLAST_API_ENQUEUE_RETRY_MS,
  maxExpectedWaitMs: env.BALLAST_API_MAX_EXPECTED_WAIT_MS,
  burstMs: env.BALLAST_API_BURST_MS,
  workerSlots: env.BALLAST_API_WORKER_SLOTS,
  bodyBudgetBytes: env.BALLAST_API_BODY_BUDGET_BYTES,
  inputFormats: env.BALLAST_INPUT_FORMATS,
  fairShare: fairShare.share,
  brownout: env.BALLAST_API_BROWNOUT && {
    ...(env.BALLAST_API_BROWNOUT_SETPOINT_MS !== undefined && { setpointMs: env.BALLAST_API_BROWNOUT_SETPOINT_MS }),
  },
});
const server = await listen(api.app.fetch, { port: env.BALLAST_API_PORT, host: env.BALLAST_API_HOST });
const ops = await listen(api.ops.fetch, { port: env.BALLAST_API_OPS_PORT, host: env.BALLAST_API_HOST });
console.log(JSON.stringify({ level: 'info', service: name, url: server.url, ops: ops.url, queue: queue.kind }));

onShutdown(async () => {
  // Out of the gateway's rotation first (health checks fail), then close.
  api.drain();
  logger.info({ service: name, drainMs: env.BALLAST_API_DRAIN_MS }, 'draining');
  await new Promise((r) => setTimeout(r, env.BALLAST_API_DRAIN_MS));
  await server.close();
  await ops.close();
  await usageStore?.close();
  await api.close();
  await identity?.close();
  fairShare.close();
  await queue.close();
});
