import type { Sql, SqlQueryable } from '@ballast/app-shared/sql';
import { generateKey, KEY_PREFIX, randomBase62 } from './key.ts';
import { type Change, IdentityError, type KeyEntry, type KeyInfo, PLANS, type Quota, type Tenant, type TenantEntry } from './model.ts';

/** What {@link IdentityStore.createTenant} takes. */
export interface NewTenant {
  name: string;
  /** One of {@link PLANS}. @default 'free' */
  plan?: string;
  /** Per-tenant overrides of the plan's quota. */
  quota?: Partial<Quota>;
}

/** What {@link IdentityStore.updateTenant} takes: a new plan (its quota replaces the old), quota overrides, or both. */
export interface TenantUpdate {
  plan?: string;
  quota?: Partial<Quota>;
}

/** A key just issued: the key itself is in this answer and nowhere else, ever. */
export interface IssuedKey {
  readonly key: string;
  readonly info: KeyInfo;
}

type Row = Record<string, unknown>;

/**
 * The management plane's store: tenants and API keys in PostgreSQL (or PGlite), and the
 * ordered log of changes the data plane is fed from. Each change commits the row and its
 * log entry in one transaction, so the log never misses nor invents a change.
 */
export class IdentityStore {
  readonly #sql: Sql;

  constructor(sql: Sql) {
    this.#sql = sql;
  }

  /** Creates a tenant with its plan's quota (and any overrides). @throws {IdentityError} 400 on bad input, 409 when the name is taken. */
  async createTenant(input: NewTenant): Promise<Tenant> {
    const plan = input.plan ?? 'free';
    const quota = { ...PLANS[plan], ...input.quota } as Quota;
    const id = `tn_${randomBase62(16)}`;
    return this.#write(async (tx) => {
      const taken = await tx.query('SELECT 1 FROM tenants WHERE lower(name) = lower($1)', [input.name]);
      if (taken.length > 0) throw new IdentityError(409, 'ERR_BALLAST_CONFLICT', `a tenant named ${describeId(input.name)} exists already`);
      const now = new Date().toISOString();
      const entry: Omit<TenantEntry, 'version'> = { kind: 'tenant', id, name: input.name, plan, quota };
      const version = await appendChange(tx, 'tenant', id, entry);
      const [row] = await tx.query(
        `INSERT INTO tenants (id, name, plan, requests_per_second, concurrent_jobs, monthly_cpu_seconds, created_at, updated_at, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) RETURNING *`,
        [id, input.name, plan, quota.requestsPerSecond, quota.concurrentJobs, quota.monthlyCpuSeconds, now, version],
      );
      return tenantFrom(row as Row);
    });
  }

  /** Every tenant, oldest first. */
  async listTenants(): Promise<Tenant[]> {
    return (await this.#read('SELECT * FROM tenants ORDER BY created_at, id')).map(tenantFrom);
  }

  /** One tenant. @throws {IdentityError} 404 when there is none with this id. */
  async getTenant(id: string): Promise<Tenant> {
    const [row] = await this.#read('SELECT * FROM tenants WHERE id = $1', [id]);
    if (!row) throw notFound('tenant', id);
    return tenantFrom(row);
  }

  /** Changes a tenant's plan and/or quota. @throws {IdentityError} 404 when there is no such tenant. */
  async updateTenant(id: string, update: TenantUpdate): Promise<Tenant> {
    return this.#write(async (tx) => {
      const [row] = await tx.query('SELECT * FROM tenants WHERE id = $1 FOR UPDATE', [id]);
      if (!row) throw notFound('tenant', id);
      const current = tenantFrom(row as Row);
      const plan = update.plan ?? current.plan;
      const base = update.plan === undefined ? current.quota : (PLANS[plan] as Quota);
      const quota: Quota = { ...base, ...update.quota };
      const entry: Omit<TenantEntry, 'version'> = { kind: 'tenant', id, name: current.name, plan, quota };
      const version = await appendChange(tx, 'tenant', id, entry);
      const [updated] = await tx.query(
        `UPDATE tenants SET plan = $2, requests_per_second = $3, concurrent_jobs = $4, monthly_cpu_seconds = $5, updated_at = now(), version = $6
         WHERE id = $1 RETURNING *`,
        [id, plan, quota.requestsPerSecond, quota.concurrentJobs, quota.monthlyCpuSeconds, version],
      );
      return tenantFrom(updated as Row);
    });
  }

  /** Issues a key for a tenant. The answer holds the key; only its hash is stored. @throws {IdentityError} 404 when there is no such tenant. */
  async issueKey(tenantId: string, options: { name?: string } = {}): Promise<IssuedKey> {
    const generated = generateKey();
    const id = `key_${randomBase62(16)}`;
    const info = await this.#write(async (tx) => {
      const [tenant] = await tx.query('SELECT id FROM tenants WHERE id = $1 FOR SHARE', [tenantId]);
      if (!tenant) throw notFound('tenant', tenantId);
      const entry: Omit<KeyEntry, 'version'> = {
        kind: 'key',
        hash: generated.hash,
        keyId: id,
        tenantId,
        prefix: generated.prefix,
        status: 'active',
      };
      const version = await appendChange(tx, 'key', id, entry);
      const [row] = await tx.query(
        'INSERT INTO api_keys (id, tenant_id, hash, prefix, name, version) VALUES ($1, $2, $3, $4, $5, $6) RETURNING *',
        [id, tenantId, generated.hash, generated.prefix, options.name ?? '', version],
      );
      return keyFrom(row as Row);
    });
    return { key: generated.key, info };
  }

  /** A tenant's keys, oldest first: metadata and display prefix only. @throws {IdentityError} 404 when there is no such tenant. */
  async listKeys(tenantId: string): Promise<KeyInfo[]> {
    await this.getTenant(tenantId);
    return (await this.#read('SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id', [tenantId])).map(keyFrom);
  }

  /** One key's metadata. @throws {IdentityError} 404 when there is no such key. */
  async getKey(keyId: string): Promise<KeyInfo> {
    const [row] = await this.#read('SELECT * FROM api_keys WHERE id = $1', [keyId]);
    if (!row) throw notFound('key', keyId);
    return keyFrom(row);
  }

  /**
   * Revokes a key for good. Revoking a revoked key changes nothing and answers the same.
   * @throws {IdentityError} 404 when there is no such key.
   */
  async revokeKey(keyId: string): Promise<KeyInfo> {
    return this.#write(async (tx) => {
      const [row] = await tx.query('SELECT * FROM api_keys WHERE id = $1 FOR UPDATE', [keyId]);
      if (!row) throw notFound('key', keyId);
      const current = keyFrom(row as Row);
      if (current.status === 'revoked') return current;
      const entry: Omit<KeyEntry, 'version'> = {
        kind: 'key',
        hash: String((row as Row).hash),
        keyId,
        tenantId: current.tenantId,
        prefix: current.prefix,
        status: 'revoked',
      };
      const version = await appendChange(tx, 'key', keyId, entry);
      const [updated] = await tx.query('UPDATE api_keys SET revoked_at = now(), version = $2 WHERE id = $1 RETURNING *', [keyId, version]);
      return keyFrom(updated as Row);
    });
  }

  /** Changes after `version`, oldest first, at most `limit`: what the relay publishes. */
  async changesSince(version: number, limit = 500): Promise<Change[]> {
    const rows = await this.#read('SELECT version, payload FROM identity_changes WHERE version > $1 ORDER BY version LIMIT $2', [
      version,
      limit,
    ]);
    return rows.map((row) => ({ ...(parseJson(row.payload) as Change), version: Number(row.version) }));
  }

  /** The version of the latest change, 0 before the first. */
  async latestVersion(): Promise<number> {
    const [row] = await this.#read('SELECT coalesce(max(version), 0) AS version FROM identity_changes');
    return Number(row?.version ?? 0);
  }

  /** Resolves when the database answers. */
  async ping(): Promise<void> {
    await this.#read('SELECT 1');
  }

  async #read(text: string, params: unknown[] = []): Promise<Row[]> {
    try {
      return await this.#sql.query(text, params);
    } catch (error) {
      throw unavailable(error);
    }
  }

  async #write<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T> {
    try {
      return await this.#sql.transaction(async (tx) => {
        // Writers take turns: versions then commit in the order they were drawn, so a
        // relay that has published version n never finds a smaller one committed later.
        await tx.query("SELECT pg_advisory_xact_lock(hashtext('ballast-identity-changes'))");
        return fn(tx);
      });
    } catch (error) {
      throw unavailable(error);
    }
  }
}

async function appendChange(tx: SqlQueryable, kind: Change['kind'], subject: string, payload: object): Promise<number> {
  const [row] = await tx.query('INSERT INTO identity_changes (kind, subject, payload) VALUES ($1, $2, $3) RETURNING version', [
    kind,
    subject,
    JSON.stringify(payload),
  ]);
  return Number((row as Row).version);
}

function tenantFrom(row: Row): Tenant {
  return {
    id: String(row.id),
    name: String(row.name),
    plan: String(row.plan),
    quota: {
      requestsPerSecond: Number(row.requests_per_second),
      concurrentJobs: Number(row.concurrent_jobs),
      monthlyCpuSeconds: Number(row.monthly_cpu_seconds),
    },
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    version: Number(row.version),
  };
}

function keyFrom(row: Row): KeyInfo {
  const revokedAt = row.revoked_at === null || row.revoked_at === undefined ? null : iso(row.revoked_at);
  return {
    id: String(row.id),
    tenantId: String(row.tenant_id),
    prefix: String(row.prefix),
    name: String(row.name),
    status: revokedAt === null ? 'active' : 'revoked',
    createdAt: iso(row.created_at),
    revokedAt,
    version: Number(row.version),
  };
}

function iso(value: unknown): string {
  return value instanceof Date ? value.toISOString() : new Date(String(value)).toISOString();
}

function parseJson(value: unknown): unknown {
  return typeof value === 'string' ? JSON.parse(value) : value;
}

function notFound(what: 'tenant' | 'key', id: string): IdentityError {
  return new IdentityError(404, 'ERR_BALLAST_NOT_FOUND', `no ${what} with id ${describeId(id)}`);
}

/** An id for a message: quoted and cut short, and never an API key pasted where an id belongs. */
export function describeId(id: string): string {
  if (id.includes(KEY_PREFIX)) return '(an API key, not an id: use the key id, key_…, which listing the keys shows)';
  return JSON.stringify(id.length > 64 ? `${id.slice(0, 64)}…` : id);
}

function unavailable(error: unknown): unknown {
  if (error instanceof IdentityError) return error;
  // A constraint the checks above did not foresee (two creates racing on one name) is the caller's conflict.
  if ((error as { code?: string }).code === '23505') {
    return new IdentityError(409, 'ERR_BALLAST_CONFLICT', 'the change conflicts with another one made at the same time; retry');
  }
  return new IdentityError(503, 'ERR_BALLAST_IDENTITY_STORE_UNAVAILABLE', 'the identity store (PostgreSQL) is unavailable', {
    cause: error,
  });
}
