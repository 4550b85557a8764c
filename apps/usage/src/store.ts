import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pgliteSql, postgresSql, type Sql, sqlString } from '@ballast/app-shared/sql';
import { lockFile } from './log-dir.ts';
import type { UsageRecord } from './record.ts';

/**
 * Columns of `usage_records` (the fields of {@link UsageRecord}, snake_case), with their types.
 * Integers only: µs, bytes, pixels, epoch ms.
 */
export const COLUMNS = [
  ['record_id', 'text'],
  ['job_id', 'text'],
  ['tenant', 'text'],
  ['outcome', 'text'],
  ['error_code', 'text'],
  ['worker', 'text'],
  ['attempt', 'integer'],
  ['cpu_us', 'bigint'],
  ['wall_us', 'bigint'],
  ['bytes_in', 'bigint'],
  ['bytes_out', 'bigint'],
  ['pixels_in', 'bigint'],
  ['pixels_out', 'bigint'],
  ['format_in', 'text'],
  ['format_out', 'text'],
  ['enqueued_at', 'bigint'],
  ['started_at', 'bigint'],
  ['finished_at', 'bigint'],
  ['request_id', 'text'],
] as const;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS usage_records (
  record_id     text PRIMARY KEY,
  job_id        text NOT NULL,
  tenant        text NOT NULL,
  outcome       text NOT NULL CHECK (outcome IN ('done', 'failed')),
  error_code    text,
  worker        text NOT NULL,
  attempt       integer NOT NULL,
  cpu_us        bigint NOT NULL,
  wall_us       bigint NOT NULL,
  bytes_in      bigint NOT NULL,
  bytes_out     bigint NOT NULL,
  pixels_in     bigint NOT NULL,
  pixels_out    bigint NOT NULL,
  format_in     text,
  format_out    text,
  enqueued_at   bigint NOT NULL,
  started_at    bigint NOT NULL,
  finished_at   bigint NOT NULL,
  request_id    text,
  -- When the store received the record (epoch ms, the database's clock): late arrivals show here.
  received_at   bigint NOT NULL DEFAULT (floor(extract(epoch FROM clock_timestamp()) * 1000))::bigint,
  -- The billing run that took the record (YYYY-MM or YYYY-MM-DD), NULL until billed.
  billing_period text
);
CREATE INDEX IF NOT EXISTS usage_records_tenant_finished ON usage_records (tenant, finished_at);
CREATE INDEX IF NOT EXISTS usage_records_unbilled ON usage_records (finished_at) WHERE billing_period IS NULL;
CREATE INDEX IF NOT EXISTS usage_records_billing_period ON usage_records (billing_period) WHERE billing_period IS NOT NULL;
CREATE TABLE IF NOT EXISTS usage_billing_runs (
  billing_period text PRIMARY KEY,
  claimed_at     bigint NOT NULL,
  records        bigint NOT NULL,
  purged_at      bigint
);
`;

/** Outcome of {@link UsageStore.insert}. */
export interface InsertResult {
  /** Records new to the store. */
  inserted: number;
  /** Records it already had (a replay, or a job that ran twice): changed nothing. */
  duplicates: number;
}

/** Billable totals of a set of records (integers as strings: exact at any size). */
export interface UsageTotals {
  conversions: number;
  failed: number;
  /** CPU of every record, µs. */
  cpuUs: string;
  /** Bytes of converted jobs (failed ones pay for CPU only). */
  bytesIn: string;
  bytesOut: string;
  /** Of these records, how many a billing run has claimed already. */
  billed: number;
}

/** A billing run's claim on the store's records. */
export interface BillingRun {
  billingPeriod: string;
  claimedAt: number;
  records: number;
  purgedAt: number | null;
}

/** Where a {@link UsageStore} lives. */
export interface UsageStoreOptions {
  /**
   * `postgres://user@host:port/db` for a PostgreSQL server; otherwise the directory of an
   * in-process PGlite database (`memory://` for one in memory).
   */
  database: string;
}

/**
 * The batch store: every shipped usage record, once. Writes are idempotent by record id
 * (`INSERT … ON CONFLICT (record_id) DO NOTHING`), so a replayed batch or a job that ran
 * twice changes nothing. PostgreSQL in the distributed mode (the server the identity
 * management plane uses), PGlite in process for the embedded default; the SQL is the same.
 */
export class UsageStore implements AsyncDisposable {
  readonly sql: Sql;

  constructor(sql: Sql) {
    this.sql = sql;
  }

  /** Opens the database and creates the tables if they are missing. */
  static async open(options: UsageStoreOptions): Promise<UsageStore> {
    const store = new UsageStore(await openSql(options.database));
    try {
      await store.migrate();
    } catch (error) {
      await store.close();
      throw error;
    }
    return store;
  }

  /** Creates the tables and indexes if they are missing (safe from many processes at once). */
  async migrate(): Promise<void> {
    await this.sql.transaction(async (tx) => {
      // Concurrent CREATE … IF NOT EXISTS can still collide in the catalog: one at a time.
      await tx.query(`SELECT pg_advisory_xact_lock(4111973)`);
      for (const statement of SCHEMA.split(';')) if (statement.trim() !== '') await tx.run(statement);
    });
  }

  /**
   * Stores a batch in one statement; records already there are left as they are.
   * Resolves once the batch is committed: the shipper's confirmation.
   */
  async insert(records: readonly UsageRecord[]): Promise<InsertResult> {
    if (records.length === 0) return { inserted: 0, duplicates: 0 };
    const columns = COLUMNS.map(([name]) => name).join(', ');
    const arrays = COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ');
    const values = COLUMNS.map(([name]) => records.map((r) => r[camel(name)]));
    const inserted = await this.sql.run(
      `INSERT INTO usage_records (${columns}) SELECT * FROM unnest(${arrays}) ON CONFLICT (record_id) DO NOTHING`,
      values,
    );
    return { inserted, duplicates: records.length - inserted };
  }

  /** The records with these ids (for tests and the checker), ordered by record id. */
  async get(recordIds: readonly string[]): Promise<UsageRecord[]> {
    const rows = await this.sql.query<Record<string, unknown>>(
      `SELECT ${COLUMNS.map(([name]) => name).join(', ')} FROM usage_records WHERE record_id = ANY($1::text[]) ORDER BY record_id`,
      [recordIds],
    );
    return rows.map(fromRow);
  }

  /** Records in the store (billed but not yet archived ones included). */
  async count(): Promise<number> {
    const rows = await this.sql.query<{ n: string | number }>('SELECT count(*) AS n FROM usage_records');
    return Number(rows[0]?.n ?? 0);
  }

  /** The billing run of `billingPeriod`, if its claim was made. */
  async billingRun(billingPeriod: string): Promise<BillingRun | undefined> {
    const rows = await this.sql.query<Record<string, string | number | null>>(
      'SELECT billing_period, claimed_at, records, purged_at FROM usage_billing_runs WHERE billing_period = $1',
      [billingPeriod],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      billingPeriod: String(row.billing_period),
      claimedAt: Number(row.claimed_at),
      records: Number(row.records),
      purgedAt: row.purged_at === null ? null : Number(row.purged_at),
    };
  }

  /**
   * Claims for `billingPeriod` every record not yet billed that finished before `endMs`,
   * once: the claim and the run's row are one transaction, and a run that exists already
   * claims nothing more (so a re-run bills exactly what the first run did, and records
   * arriving after it go to the next period's run as adjustments).
   */
  async claim(billingPeriod: string, endMs: number, nowMs: number): Promise<BillingRun> {
    await this.sql.transaction(async (tx) => {
      const created = await tx.run(
        'INSERT INTO usage_billing_runs (billing_period, claimed_at, records) VALUES ($1, $2, 0) ON CONFLICT (billing_period) DO NOTHING',
        [billingPeriod, nowMs],
      );
      if (created === 0) return;
      const claimed = await tx.run('UPDATE usage_records SET billing_period = $1 WHERE billing_period IS NULL AND finished_at < $2', [
        billingPeriod,
        endMs,
      ]);
      await tx.run('UPDATE usage_billing_runs SET records = $2 WHERE billing_period = $1', [billingPeriod, claimed]);
    });
    return (await this.billingRun(billingPeriod)) as BillingRun;
  }

  /** Records claimed by `billingPeriod` and still in the store. */
  async claimedCount(billingPeriod: string): Promise<number> {
    const rows = await this.sql.query<{ n: string | number }>('SELECT count(*) AS n FROM usage_records WHERE billing_period = $1', [
      billingPeriod,
    ]);
    return Number(rows[0]?.n ?? 0);
  }

  /** Writes the records claimed by `billingPeriod` to `path` as CSV (header line, ordered by record id). */
  async exportClaimed(billingPeriod: string, path: string): Promise<void> {
    await this.sql.copyToCsv(
      `SELECT ${EXPORT_COLUMNS} FROM usage_records WHERE billing_period = ${sqlString(billingPeriod)} ORDER BY record_id`,
      path,
    );
  }

  /** Writes the records that finished in [`fromMs`, `toMs`) to `path` as CSV (the invariant checker's input). */
  async exportFinished(fromMs: number, toMs: number, path: string): Promise<void> {
    await this.sql.copyToCsv(
      `SELECT ${EXPORT_COLUMNS} FROM usage_records WHERE finished_at >= ${Math.trunc(fromMs)} AND finished_at < ${Math.trunc(toMs)} ORDER BY record_id`,
      path,
    );
  }

  /**
   * One tenant's usage recorded so far among records that finished in [`fromMs`, `toMs`):
   * what `GET /v1/usage` shows. Served by the `(tenant, finished_at)` index.
   */
  async tenantUsage(tenant: string, fromMs: number, toMs: number): Promise<UsageTotals> {
    const rows = await this.sql.query<Record<string, string | number | null>>(
      `SELECT COUNT(*) FILTER (WHERE outcome = 'done') AS conversions, COUNT(*) FILTER (WHERE outcome = 'failed') AS failed,
         COALESCE(SUM(cpu_us), 0)::text AS cpu_us,
         COALESCE(SUM(bytes_in) FILTER (WHERE outcome = 'done'), 0)::text AS bytes_in,
         COALESCE(SUM(bytes_out) FILTER (WHERE outcome = 'done'), 0)::text AS bytes_out,
         COUNT(*) FILTER (WHERE billing_period IS NOT NULL) AS billed
       FROM usage_records WHERE tenant = $1 AND finished_at >= $2 AND finished_at < $3`,
      [tenant, Math.trunc(fromMs), Math.trunc(toMs)],
    );
    const row = rows[0] ?? {};
    return {
      conversions: Number(row.conversions ?? 0),
      failed: Number(row.failed ?? 0),
      cpuUs: String(row.cpu_us ?? '0'),
      bytesIn: String(row.bytes_in ?? '0'),
      bytesOut: String(row.bytes_out ?? '0'),
      billed: Number(row.billed ?? 0),
    };
  }

  /**
   * Deletes the records claimed by `billingPeriod` once their archive is verified, in one
   * transaction with marking the run purged. Returns how many were deleted.
   */
  async purge(billingPeriod: string, nowMs: number): Promise<number> {
    return await this.sql.transaction(async (tx) => {
      const deleted = await tx.run('DELETE FROM usage_records WHERE billing_period = $1', [billingPeriod]);
      await tx.run('UPDATE usage_billing_runs SET purged_at = $2 WHERE billing_period = $1', [billingPeriod, nowMs]);
      return deleted;
    });
  }

  async close(): Promise<void> {
    await this.sql.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens the store's database: `postgres://…` URLs on a server (no statement timeout: a
 * billing claim or a purge may run long), anything else as the directory of an in-process
 * PGlite database (`memory://` for one that lives in memory), locked to this process.
 */
export async function openSql(target: string): Promise<Sql> {
  if (/^postgres(ql)?:\/\//.test(target)) return postgresSql({ url: target, statementTimeoutMs: 0 });
  if (target === 'memory://') return await pgliteSql();
  // A PGlite directory is one process's: a second one opening it would corrupt it.
  await mkdir(dirname(resolve(target)), { recursive: true });
  const unlock = await lockFile(`${resolve(target)}.lock`, `the PGlite database ${target}`);
  try {
    const sql = await pgliteSql(target);
    const close = (): Promise<void> => sql.close().finally(unlock);
    return { ...sql, close, [Symbol.asyncDispose]: close };
  } catch (error) {
    await unlock();
    throw error;
  }
}

/** Columns of the store's CSV exports: the record, when the store received it, and the run that billed it. */
const EXPORTED: ReadonlyArray<readonly [string, 'text' | 'integer' | 'bigint']> = [
  ...COLUMNS,
  ['received_at', 'bigint'],
  ['billing_period', 'text'],
];
const EXPORT_COLUMNS = EXPORTED.map(([name]) => name).join(', ');

/** The `columns = {…}` argument of DuckDB's `read_csv` for the store's CSV exports. */
export function exportCsvColumns(): string {
  const duckType = { text: 'VARCHAR', integer: 'INTEGER', bigint: 'BIGINT' } as const;
  return `{${EXPORTED.map(([name, type]) => `${sqlString(name)}: ${sqlString(duckType[type])}`).join(', ')}}`;
}

function camel(column: string): keyof UsageRecord {
  return column.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) as keyof UsageRecord;
}

function fromRow(row: Record<string, unknown>): UsageRecord {
  const record: Record<string, unknown> = {};
  for (const [name, type] of COLUMNS) {
    const value = row[name];
    record[camel(name)] = type === 'text' || value === null ? value : Number(value);
  }
  return record as unknown as UsageRecord;
}
