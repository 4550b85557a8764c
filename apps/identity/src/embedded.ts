import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pgliteSql, type Sql } from '@ballast/app-shared/sql';
import { IdentityClient, type IdentityClientOptions } from './edge-cache.ts';
import { InProcessFeed } from './feed.ts';
import { createManagementApi, type ManagementApi, type ManagementApiOptions } from './management.ts';
import { migrate } from './migrations.ts';
import { ChangeRelay } from './relay.ts';
import { IdentityStore } from './store.ts';

/** Options of {@link startEmbeddedIdentity}. */
export interface EmbeddedIdentityOptions {
  /**
   * Directory of the PGlite database and of `demo.json` (the demo tenant's key, kept so
   * every start can print it); `undefined` keeps everything in memory for one run.
   */
  dataDir?: string;
  /** The management plane's admin token. @default a random one, kept in `dataDir` */
  adminToken?: string;
  /** Create a demo tenant (plan `enterprise`) and key on first run. @default true */
  demo?: boolean;
  /** Extra management-plane options (log, registry). */
  management?: Partial<ManagementApiOptions>;
}

/** The demo tenant and its key. */
export interface DemoTenant {
  readonly tenantId: string;
  readonly keyId: string;
  readonly key: string;
}

/** Identity in one process: PGlite store, management plane, in-process feed. */
export interface EmbeddedIdentity extends AsyncDisposable {
  readonly store: IdentityStore;
  readonly feed: InProcessFeed;
  readonly relay: ChangeRelay;
  readonly management: ManagementApi;
  readonly adminToken: string;
  readonly demo: DemoTenant | undefined;
  /** A new edge cache on the in-process feed (one per API server), started. */
  client(options?: Partial<IdentityClientOptions>): Promise<IdentityClient>;
  close(): Promise<void>;
}

/**
 * Starts identity for the embedded system (`npm start`): the schema migrated on PGlite,
 * the management plane, and the in-process feed the API servers' edge caches read. On
 * first run it creates a demo tenant and key and keeps them in `dataDir`.
 */
export async function startEmbeddedIdentity(options: EmbeddedIdentityOptions = {}): Promise<EmbeddedIdentity> {
  const dir = options.dataDir;
  if (dir !== undefined) mkdirSync(dir, { recursive: true, mode: 0o700 });
  const sql: Sql = await pgliteSql(dir === undefined ? undefined : join(dir, 'pglite'));
  const clients: IdentityClient[] = [];
  let relay: ChangeRelay | undefined;
  try {
    await migrate(sql);
    const store = new IdentityStore(sql);
    const feed = new InProcessFeed();
    relay = new ChangeRelay(store, feed);
    await relay.flush();
    const adminToken = options.adminToken ?? secret(dir, 'admin-token');
    const management = createManagementApi({ ...options.management, store, relay, adminToken });
    const demo = options.demo === false ? undefined : await demoTenant(store, dir);
    await relay.flush();
    const ownRelay = relay;
    const close = async (): Promise<void> => {
      await Promise.all(clients.map((c) => c.close()));
      await ownRelay.close();
      await feed.close();
      await sql.close();
    };
    return {
      store,
      feed,
      relay,
      management,
      adminToken,
      demo,
      async client(clientOptions = {}) {
        const client = new IdentityClient({ ...clientOptions, source: feed });
        clients.push(client);
        await client.start();
        return client;
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (error) {
    await relay?.close();
    await sql.close();
    throw error;
  }
}

async function demoTenant(store: IdentityStore, dir: string | undefined): Promise<DemoTenant> {
  const file = dir === undefined ? undefined : join(dir, 'demo.json');
  if (file !== undefined && existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as DemoTenant;
    const key = await store.getKey(saved.keyId).catch(() => undefined);
    if (key?.status === 'active') return saved;
  }
  const tenants = await store.listTenants();
  const tenant = tenants.find((t) => t.name === 'demo') ?? (await store.createTenant({ name: 'demo', plan: 'enterprise' }));
  const issued = await store.issueKey(tenant.id, { name: 'demo key (npm start)' });
  const demo: DemoTenant = { tenantId: tenant.id, keyId: issued.info.id, key: issued.key };
  if (file !== undefined) writePrivate(file, JSON.stringify(demo, null, 2));
  return demo;
}

/** A random secret kept in `dir/name` (mode 0600) across runs; a new one each run without `dir`. */
function secret(dir: string | undefined, name: string): string {
  const file = dir === undefined ? undefined : join(dir, name);
  if (file !== undefined && existsSync(file)) return readFileSync(file, 'utf8').trim();
  const value = randomBytes(24).toString('base64url');
  if (file !== undefined) writePrivate(file, value);
  return value;
}

function writePrivate(file: string, content: string): void {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}
