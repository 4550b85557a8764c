import type { Sql } from '@ballast/app-shared/sql';

/** One schema change, applied once, in order, inside a transaction. */
export interface Migration {
  readonly id: number;
  readonly name: string;
  readonly sql: string;
}

/**
 * The identity schema. Every change to a tenant or key appends a row to
 * `identity_changes` whose `version` orders it; the row's `payload` is exactly what the
 * data plane receives. Keys are stored as their SHA-256 only.
 */
export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'tenants, keys, change log',
    sql: `
CREATE TABLE tenants (
  id text PRIMARY KEY,
  name text NOT NULL,
  plan text NOT NULL,
  requests_per_second double precision NOT NULL CHECK (requests_per_second > 0),
  concurrent_jobs integer NOT NULL CHECK (concurrent_jobs > 0),
  monthly_cpu_seconds bigint NOT NULL CHECK (monthly_cpu_seconds >= 0),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  version bigint NOT NULL
);
CREATE UNIQUE INDEX tenants_name_key ON tenants (lower(name));
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  tenant_id text NOT NULL REFERENCES tenants (id),
  hash text NOT NULL UNIQUE,
  prefix text NOT NULL,
  name text NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  version bigint NOT NULL
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
CREATE TABLE identity_changes (
  version bigserial PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('tenant', 'key')),
  subject text NOT NULL,
  payload jsonb NOT NULL,
  at timestamptz NOT NULL DEFAULT now()
);
`,
  },
];

/**
 * Applies the migrations not applied yet, each in its own transaction, under an advisory
 * lock so that two management-plane processes starting together apply each once.
 * Returns the ids applied now.
 */
export async function migrate(sql: Sql, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await sql.query(
    'CREATE TABLE IF NOT EXISTS identity_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  const applied: number[] = [];
  for (const migration of migrations) {
    const done = await sql.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext('ballast-identity-migrations'))");
      const rows = await tx.query('SELECT 1 FROM identity_migrations WHERE id = $1', [migration.id]);
      if (rows.length > 0) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO identity_migrations (id, name) VALUES ($1, $2)', [migration.id, migration.name]);
      return true;
    });
    if (done) applied.push(migration.id);
  }
  return applied;
}
