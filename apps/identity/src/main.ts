/**
 * The management plane as its own process (the distributed mode):
 *
 *   BALLAST_IDENTITY_ADMIN_TOKEN=<at least 16 characters> \
 *   BALLAST_IDENTITY_DATABASE_URL=postgres://user@host:5432/identity \
 *   BALLAST_REDIS_URL=redis://127.0.0.1:6379 \
 *   npx node --conditions=@ballast/source apps/identity/src/main.ts
 *
 * Migrates the schema, serves the management API on BALLAST_IDENTITY_PORT (8090), and
 * publishes every change to the Redis feed the API servers' edge caches read
 * (BALLAST_REDIS_SENTINELS + BALLAST_REDIS_MASTER, or BALLAST_REDIS_URL). Without a
 * database URL it keeps its data in PGlite under BALLAST_IDENTITY_DATA_DIR.
 */
import { IDENTITY_ENV, listen, onShutdown, QUEUE_ENV, startService } from '@ballast/app-shared';
import { identityFromEnv } from './env.ts';

const { env, logger } = startService('identity', { ...QUEUE_ENV, ...IDENTITY_ENV });
const identity = await identityFromEnv();
const server = await listen(identity.management.app.fetch, { port: env.BALLAST_IDENTITY_PORT, host: env.BALLAST_IDENTITY_HOST });
console.log(JSON.stringify({ level: 'info', service: 'identity', url: server.url, store: identity.storeKind, feed: identity.feedKind }));
onShutdown(async () => {
  logger.info({ service: 'identity' }, 'stopping');
  await server.close();
  await identity.close();
});
