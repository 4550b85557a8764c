import { IdentityClient, identityFeedFromEnv } from '@ballast/app-identity';
import type { Authenticate } from '@ballast/app-shared';
import { apiRedisFromEnv } from './env.ts';
import { identityAuthentication } from './tenancy.ts';
import { TenantQuotas } from './tenant-quota.ts';

/** Identity for an API server in the distributed mode: what `createApi` takes, and how to stop it. */
export interface ApiIdentity {
  readonly identity: IdentityClient;
  readonly quotas: TenantQuotas;
  readonly authenticate: Authenticate;
  close(): Promise<void>;
}

/**
 * The edge cache on the Redis feed the management plane publishes to, and per-tenant
 * quotas shared through the same Redis (BALLAST_REDIS_SENTINELS + BALLAST_REDIS_MASTER,
 * or BALLAST_REDIS_URL). Starts the cache; resolves even when Redis is not there yet
 * (keys are answered 503 until the first snapshot arrives). `workerSlots` (the workers'
 * conversions at once, BALLAST_API_WORKER_SLOTS) sizes each tenant's fair share of them.
 */
export async function apiIdentityFromEnv(env: NodeJS.ProcessEnv = process.env, workerSlots?: number): Promise<ApiIdentity> {
  const feed = identityFeedFromEnv(env);
  const redis = apiRedisFromEnv(env) as NonNullable<ReturnType<typeof apiRedisFromEnv>>;
  redis.on('error', () => {}); // failures surface as admitted requests (availability first), counted in the quotas' stats
  const identity = new IdentityClient({ source: feed });
  const quotas = new TenantQuotas({ redis, workerSlots });
  await feed.ready().catch(() => {});
  await identity.start();
  return {
    identity,
    quotas,
    authenticate: identityAuthentication({ identity, quotas }),
    async close() {
      await identity.close();
      quotas.close();
      await feed.close();
      redis.disconnect();
    },
  };
}
