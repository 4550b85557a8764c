/**
 * The identity control plane on real servers, as the distributed deployment runs it:
 * PostgreSQL behind the management plane, and Redis carrying the change feed the edge
 * caches read. For tests and benchmarks that put edge caches (in process or in their own
 * processes) on `redis.url`.
 */
import { postgresSql, type Sql } from '@ballast/app-shared/sql';
import { type PostgresServer, startPostgres } from '@ballast/test/postgres';
import { type RedisServer, startRedis } from '@ballast/test/redis';
import type { Hono } from 'hono';
import { createManagementApi } from '../management.ts';
import { migrate } from '../migrations.ts';
import { RedisFeed } from '../redis-feed.ts';
import { ChangeRelay } from '../relay.ts';
import { IdentityStore } from '../store.ts';

/** Options of {@link startIdentityPlane}. */
export interface IdentityPlaneOptions {
  /** The management plane's admin token. @default a fixed test token */
  adminToken?: string;
  /** The relay's catch-up interval, ms (see `ChangeRelayOptions.intervalMs`). @default 1000 */
  relayIntervalMs?: number;
  /** How long an answer waits for its change to reach the feed, ms. @default 2000 */
  publishTimeoutMs?: number;
  /** The feed's command timeout, ms (see `RedisFeedOptions.commandTimeoutMs`). */
  feedCommandTimeoutMs?: number;
  /** How long to wait for the servers to answer, ms. @default 60000 */
  readyTimeoutMs?: number;
}

/** An answer of the management plane. */
export interface AdminAnswer {
  status: number;
  /** Its `x-identity-published` header: whether the change reached the feed before the answer. */
  published: string | null;
  body: Record<string, string>;
}

/** A running identity control plane. */
export interface IdentityPlane extends AsyncDisposable {
  readonly pg: PostgresServer;
  readonly redis: RedisServer;
  readonly sql: Sql;
  readonly store: IdentityStore;
  /** The feed the relay publishes to. */
  readonly sink: RedisFeed;
  readonly relay: ChangeRelay;
  /** The management plane's HTTP app. */
  readonly app: Hono;
  /** Calls the management plane as its admin. */
  admin(method: string, path: string, body?: unknown): Promise<AdminAnswer>;
  /** Stops the relay, closes the feed and the pool, and stops both servers. */
  close(): Promise<void>;
}

/** Starts PostgreSQL and Redis on free loopback ports and the management plane over them. */
export async function startIdentityPlane(options: IdentityPlaneOptions = {}): Promise<IdentityPlane> {
  const adminToken = options.adminToken ?? 'admin-token-for-tests-0123456789';
  const readyMs = options.readyTimeoutMs ?? 60_000;
  const [pg, redis] = await Promise.all([startPostgres(), startRedis()]);
  const sql = postgresSql({ url: await pg.createDatabase('identity'), connectTimeoutMs: 10_000 });
  await migrate(sql);
  const store = new IdentityStore(sql);
  const sink = new RedisFeed({ connection: redis.url, commandTimeoutMs: options.feedCommandTimeoutMs });
  await sink.ready(readyMs);
  const relay = new ChangeRelay(store, sink, { intervalMs: options.relayIntervalMs });
  const { app } = createManagementApi({ store, relay, adminToken, publishTimeoutMs: options.publishTimeoutMs });
  const close = async (): Promise<void> => {
    await relay.close();
    await sink.close();
    await sql.close();
    await Promise.all([pg.stop(), redis.stop()]);
  };
  return {
    pg,
    redis,
    sql,
    store,
    sink,
    relay,
    app,
    async admin(method, path, body) {
      const response = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      return {
        status: response.status,
        published: response.headers.get('x-identity-published'),
        body: (await response.json()) as Record<string, string>,
      };
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
