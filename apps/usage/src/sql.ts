import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { lockFile } from './log-dir.ts';

/**
 * The few things the usage store needs from PostgreSQL, over two drivers: node-postgres
 * against a server (the distributed mode) and PGlite in process (the embedded default).
 * The SQL is the same for both.
 */
export interface SqlClient {
  /** `'postgres'` (a server) or `'pglite'` (in process). */
  readonly kind: 'postgres' | 'pglite';
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: T[]; rowCount: number }>;
  /** Runs `fn` in one transaction (committed when it resolves, rolled back when it throws). */
  transaction<T>(fn: (tx: SqlQuery) => Promise<T>): Promise<T>;
  /** Writes the rows of `select` to `path` as CSV with a header line (`COPY … TO STDOUT`). */
  copyToCsv(select: string, path: string): Promise<void>;
  close(): Promise<void>;
}

/** A query function, inside or outside a transaction. */
export type SqlQuery = SqlClient['query'];

/** A {@link SqlClient} on a PostgreSQL server (a `pg` pool of `max` connections). */
export function postgresClient(url: string, max = 4): SqlClient {
  const pool = new pg.Pool({ connectionString: url, max, idleTimeoutMillis: 10_000, allowExitOnIdle: true });
  // An idle connection dropped by the server (restart, failover) must not crash the process;
  // the next query gets a fresh connection.
  pool.on('error', () => {});
  const run = async <T>(client: pg.Pool | pg.PoolClient, text: string, params?: unknown[]) => {
    const result = await client.query(text, params as unknown[]);
    return { rows: result.rows as T[], rowCount: result.rowCount ?? 0 };
  };
  return {
    kind: 'postgres',
    query: (text, params) => run(pool, text, params),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const value = await fn((text, params) => run(client, text, params));
        await client.query('COMMIT');
        return value;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    async copyToCsv(select, path) {
      const client = await pool.connect();
      try {
        const source = client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER true)`));
        await pipeline(source, createWriteStream(path));
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

/** A {@link SqlClient} on an in-process PGlite database. */
export function pgliteClient(db: PGlite): SqlClient {
  const run = async <T>(q: Pick<PGlite, 'query'>, text: string, params?: unknown[]) => {
    const result = await q.query<T>(text, params);
    return { rows: result.rows, rowCount: result.affectedRows ?? result.rows.length };
  };
  return {
    kind: 'pglite',
    query: (text, params) => run(db, text, params),
    transaction: (fn) => db.transaction((tx) => fn((text, params) => run(tx, text, params))),
    async copyToCsv(select, path) {
      const result = await db.query(`COPY (${select}) TO '/dev/blob' WITH (FORMAT csv, HEADER true)`);
      await writeFile(path, result.blob ? Buffer.from(await result.blob.arrayBuffer()) : '');
    },
    close: () => db.close(),
  };
}

/**
 * Opens the store's database: `postgres://…` URLs on a server, anything else as the
 * directory of an in-process PGlite database (`memory://` for one that lives in memory).
 */
export async function openSql(target: string): Promise<SqlClient> {
  if (/^postgres(ql)?:\/\//.test(target)) return postgresClient(target);
  const { PGlite } = await import('@electric-sql/pglite');
  if (target === 'memory://') return pgliteClient(await PGlite.create());
  // A PGlite directory is one process's: a second one opening it would corrupt it.
  await mkdir(dirname(resolve(target)), { recursive: true });
  const unlock = await lockFile(`${resolve(target)}.lock`, `the PGlite database ${target}`);
  try {
    const client = pgliteClient(await PGlite.create(target));
    return { ...client, close: () => client.close().finally(unlock) };
  } catch (error) {
    await unlock();
    throw error;
  }
}

/** A SQL string literal (for statements that take no parameters: COPY, DuckDB's file functions). */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
