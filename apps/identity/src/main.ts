/**
 * The management plane as its own process (the distributed mode):
 *
 *   BALLAST_IDENTITY_ADMIN_TOKEN=<≥16 characters> \
 *   BALLAST_IDENTITY_DATABASE_URL=postgres://user@host:5432/identity \
 *   BALLAST_REDIS_URL=redis://127.0.0.1:6379 \
 *   npx node --conditions=@ballast/source apps/identity/src/main.ts
 *
 * Migrates the schema, serves the management API on BALLAST_IDENTITY_PORT (8090), and
 * publishes every change to the Redis feed the API servers' edge caches read
 * (BALLAST_REDIS_SENTINELS + BALLAST_REDIS_MASTER, or BALLAST_REDIS_URL). Without a
 * database URL it keeps its data in PGlite under BALLAST_IDENTITY_DATA_DIR.
 */
import { serve } from '@hono/node-server';
import { identityFromEnv } from './env.ts';

const identity = await identityFromEnv();
const port = Number(process.env.BALLAST_IDENTITY_PORT ?? 8090);
const host = process.env.BALLAST_IDENTITY_HOST ?? '127.0.0.1';
const server = serve({ fetch: identity.management.app.fetch, port, hostname: host });
console.log(
  JSON.stringify({ level: 'info', service: 'identity', url: `http://${host}:${port}`, store: identity.storeKind, feed: identity.feedKind }),
);
const stop = async (): Promise<void> => {
  server.close();
  await identity.close();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
