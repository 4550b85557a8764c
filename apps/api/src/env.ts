import { redisConnectionFromEnv } from '@ballast/app-identity';
import { parseAddresses } from '@ballast/app-queue';
import type { API_ENV, EnvValues } from '@ballast/app-shared';
import { Cluster, Redis } from 'ioredis';
import type { CostBudgetOptions } from './cost-budget.ts';
import { FairShare } from './fair-share.ts';

/** A fair share built from the environment, and how to let go of its Redis connection. */
export interface FairShareFromEnv {
  readonly share: FairShare | false;
  close(): void;
}

/**
 * The API server's fair share from its `BALLAST_API_*` variables, counted through the
 * queue's Redis (Sentinels, one primary or a cluster) when there is one, so every API
 * server on it counts the same clients; in this process otherwise.
 * `BALLAST_API_FAIR_SHARE=false` turns it off.
 */
export function fairShareFromEnv(
  env: EnvValues<typeof API_ENV>,
  workerSlots: number | undefined,
  raw: NodeJS.ProcessEnv = process.env,
): FairShareFromEnv {
  if (!env.BALLAST_API_FAIR_SHARE) return { share: false, close: () => {} };
  const redis = apiRedisFromEnv(raw);
  redis?.on('error', () => {}); // a failing Redis admits (availability first), counted in the share's stats
  const share = new FairShare({
    workerSlots,
    maxJobsPerClient: env.BALLAST_API_MAX_JOBS_PER_CLIENT,
    costlyMs: env.BALLAST_API_COSTLY_MS,
    maxCostlyPerClient: env.BALLAST_API_MAX_COSTLY_PER_CLIENT,
    maxCostly: env.BALLAST_API_MAX_COSTLY,
    trustedProxies: env.BALLAST_API_TRUSTED_PROXIES,
    anonymousBudget: budgetFromEnv(env.BALLAST_API_ANONYMOUS_COST_MS_PER_SEC, env.BALLAST_API_ANONYMOUS_COST_BURST_MS),
    tenantBudget: budgetFromEnv(env.BALLAST_API_TENANT_COST_MS_PER_SEC, env.BALLAST_API_TENANT_COST_BURST_MS),
    redis,
  });
  return {
    share,
    close: () => {
      share.close();
      redis?.disconnect();
    },
  };
}

/** A cost budget from its two variables: none when the rate is unset or 0. */
function budgetFromEnv(msPerSec: number | undefined, burstMs: number | undefined): CostBudgetOptions | false {
  return msPerSec ? { msPerSec, burstMs } : false;
}

/**
 * An ioredis client on the queue's Redis for what API servers share besides the queue
 * (quotas, fair share): a cluster client for `BALLAST_REDIS_CLUSTER`, else the primary the
 * Sentinels elect, else `BALLAST_REDIS_URL`; undefined without Redis. It never queues
 * commands while disconnected: callers answer a failure by admitting.
 */
export function apiRedisFromEnv(env: NodeJS.ProcessEnv = process.env): Redis | Cluster | undefined {
  const options = { enableOfflineQueue: false, maxRetriesPerRequest: 1, retryStrategy: (n: number) => Math.min(100 * n, 1000) };
  if (env.BALLAST_REDIS_CLUSTER) {
    const nodes = parseAddresses(env.BALLAST_REDIS_CLUSTER, 'BALLAST_REDIS_CLUSTER');
    return new Cluster(nodes, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });
  }
  const connection = redisConnectionFromEnv(env);
  if (connection === undefined) return undefined;
  return typeof connection === 'string' ? new Redis(connection, options) : new Redis({ ...connection, ...options });
}
