/**
 * Identity for `npm start`: the management plane on PGlite (kept in
 * BALLAST_IDENTITY_DATA_DIR, default .ballast/identity), the in-process change feed, one
 * edge cache per API server and per-tenant quotas, plus a demo tenant (plan enterprise)
 * and key made on first run. The management API listens on BALLAST_IDENTITY_PORT (8090,
 * a free one if taken); its URL and admin token go to .ballast/identity.json for
 * `npm run identity`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TenantQuotas } from '@ballast/app-api';
import { type EmbeddedIdentity, type IdentityClient, startEmbeddedIdentity } from '@ballast/app-identity';
import { type Listening, listen } from '@ballast/app-shared';

/** What the system needs from identity, and how to stop it. */
export interface StartedIdentity {
  readonly identity: EmbeddedIdentity;
  readonly quotas: TenantQuotas;
  readonly management: Listening | undefined;
  /** Where the data is kept, or undefined in memory (another `npm start` holds the directory, or `--burst`). */
  readonly dataDir: string | undefined;
  /** A started edge cache for one more API server. */
  client(): Promise<IdentityClient>;
  close(): Promise<void>;
}

/** Options of {@link startIdentity}. */
export interface StartIdentityOptions {
  /** Keep tenants and keys in `dataDir` and serve the management API; false keeps everything in memory (a burst run). */
  persistent: boolean;
  /** The PGlite directory. @default .ballast/identity */
  dataDir?: string;
  /** Management API port, a free one if taken. @default 8090 */
  port?: number;
}

/** Starts identity for the embedded system. */
export async function startIdentity(options: StartIdentityOptions): Promise<StartedIdentity> {
  const { persistent } = options;
  const root = resolve('.ballast');
  const wanted = resolve(options.dataDir ?? join(root, 'identity'));
  const dataDir = persistent && lock(wanted) ? wanted : undefined;
  const identity = await startEmbeddedIdentity({ dataDir });
  const quotas = new TenantQuotas();
  let management: Listening | undefined;
  if (persistent) {
    const fetch = identity.management.app.fetch;
    management = await listen(fetch, { port: options.port ?? 8090 }).catch(() => listen(fetch, { port: 0 }));
    if (dataDir !== undefined) {
      mkdirSync(root, { recursive: true, mode: 0o700 });
      writeFileSync(join(root, 'identity.json'), JSON.stringify({ url: management.url, adminToken: identity.adminToken }), { mode: 0o600 });
    }
  }
  return {
    identity,
    quotas,
    management,
    dataDir,
    client: () => identity.client(),
    async close() {
      await management?.close();
      quotas.close();
      await identity.close();
      if (dataDir !== undefined) {
        rmSync(join(root, 'identity.json'), { force: true });
        rmSync(join(dataDir, 'lock'), { force: true });
      }
    },
  };
}

/** Takes `dir/lock` for this process, unless a live process holds it. */
function lock(dir: string): boolean {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'lock');
  if (existsSync(file)) {
    const pid = Number(readFileSync(file, 'utf8'));
    try {
      if (pid !== process.pid) {
        process.kill(pid, 0);
        return false; // held by a running npm start
      }
    } catch {
      // Stale: its process is gone.
    }
  }
  writeFileSync(file, String(process.pid));
  return true;
}
