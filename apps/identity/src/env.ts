import { parseAddresses } from '@ballast/app-queue';
import { pgliteSql, postgresSql } from '@ballast/app-shared/sql';
import { InvalidOptionError } from '@ballast/common';
import type { RedisOptions } from 'ioredis';
import { createManagementApi, type ManagementApi } from './management.ts';
import { migrate } from './migrations.ts';
import { RedisFeed } from './redis-feed.ts';
import { ChangeRelay } from './relay.ts';
import { IdentityStore } from './store.ts';

/** The Redis the feed runs on, from the same variables as the queue: Sentinels, else one URL; undefined when neither is set. */
export function redisConnectionFromEnv(env: NodeJS.ProcessEnv = process.env): string | RedisOptions | undefined {
  if (env.BALLAST_REDIS_SENTINELS)
    return { sentinels: parseAddresses(env.BALLAST_REDIS_SENTINELS), name: env.BALLAST_REDIS_MASTER || 'ballast' };
  return env.BALLAST_REDIS_URL || undefined;
}

/** The data-plane side for an API server: a {@link RedisFeed} on the configured Redis. @throws when no Redis is configured. */
export function identityFeedFromEnv(env: NodeJS.ProcessEnv = process.env): RedisFeed {
  const connection = redisConnectionFromEnv(env);
  if (connection === undefined)
    throw new InvalidOptionError('BALLAST_REDIS_URL', 'set (or BALLAST_REDIS_SENTINELS) for identity over Redis', undefined);
  return new RedisFeed({ connection });
}

/** The management plane built from the environment, ready to serve. */
export interface IdentityFromEnv {
  readonly management: ManagementApi;
  readonly storeKind: 'postgres' | 'pglite';
  readonly feedKind: 'redis';
  close(): Promise<void>;
}

/**
 * Builds the management plane: store from BALLAST_IDENTITY_DATABASE_URL (PostgreSQL) or
 * PGlite in BALLAST_IDENTITY_DATA_DIR, feed on the configured Redis, admin token from
 * BALLAST_IDENTITY_ADMIN_TOKEN. Migrates the schema and publishes what the feed lacks.
 */
export async function identityFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<IdentityFromEnv> {
  const adminToken = env.BALLAST_IDENTITY_ADMIN_TOKEN ?? '';
  if (adminToken.length < 16) {
    throw new InvalidOptionError(
      'BALLAST_IDENTITY_ADMIN_TOKEN',
      'a secret of at least 16 characters',
      adminToken === '' ? undefined : '(too short)',
    );
  }
  const feed = identityFeedFromEnv(env);
  const sql = env.BALLAST_IDENTITY_DATABASE_URL
    ? postgresSql({ url: env.BALLAST_IDENTITY_DATABASE_URL })
    : await pgliteSql(env.BALLAST_IDENTITY_DATA_DIR || undefined);
  await migrate(sql);
  const store = new IdentityStore(sql);
  const relay = new ChangeRelay(store, feed);
  await relay.flush().catch(() => {}); // Redis may come later: the relay keeps trying
  const management = createManagementApi({ store, relay, adminToken });
  return {
    management,
    storeKind: sql.kind,
    feedKind: 'redis',
    async close() {
      await relay.close();
      await feed.close();
      await sql.close();
    },
  };
}
