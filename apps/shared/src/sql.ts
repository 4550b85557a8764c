/**
 * One small SQL interface over the two PostgreSQL engines the services run on: a real
 * server through `pg` (the distributed mode, tests) and PGlite, PostgreSQL compiled to
 * WebAssembly and run in process (`npm start`'s embedded default). The schema, the
 * migrations and every query are the same on both. The identity management plane and the
 * usage batch store use it.
 */
import { createWriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { integer } from '@ballast/common';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';

/** Runs statements; rows come back as plain objects. */
export interface SqlQueryable {
  /** One statement, with `$1`… parameters; resolves with the rows it returns. */
  query<R extends Record<string, unknown> = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** One statement, with `$1`… parameters; resolves with how many rows it inserted, updated or deleted. */
  run(text: string, params?: readonly unknown[]): Promise<number>;
  /** A script of several statements, without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** A database: statements, transactions, CSV export, close. */
export interface Sql extends SqlQueryable, AsyncDisposable {
  /** Which engine. */
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Writes the rows of `select` to `path` as CSV with a header line (`COPY … TO`). */
  copyToCsv(select: string, path: string): Promise<void>;
  /** Closes the connections (a PGlite database is flushed and closed); a second call does nothing. */
  close(): Promise<void>;
}

/** Options of {@link postgresSql}. */
export interface PostgresSqlOptions {
  /** `postgres://user:password@host:port/database`. */
  url: string;
  /** Connections in the pool. @default 4 */
  maxConnections?: number;
  /** Connect timeout, ms. @default 5000 */
  connectTimeoutMs?: number;
  /**
   * Per-statement timeout, ms: a hung server fails a request instead of holding it; `0`
   * for none (batch jobs whose statements may run long). @default 5000
   */
  statementTimeoutMs?: number;
}

/** One statement's rows and how many rows it changed, from either driver. */
type Run = (text: string, params: unknown[]) => Promise<{ rows: unknown[]; count: number }>;

function queryable(run: Run, exec: (script: string) => Promise<unknown>): SqlQueryable {
  return {
    query: async <R>(text: string, params: readonly unknown[] = []) => (await run(text, [...params])).rows as R[],
    run: async (text, params = []) => (await run(text, [...params])).count,
    exec: async (script) => {
      await exec(script);
    },
  };
}

function pgQueryable(client: pg.Pool | pg.PoolClient): SqlQueryable {
  const run: Run = async (text, params) => {
    const result = await client.query(text, params);
    return { rows: result.rows, count: result.rowCount ?? 0 };
  };
  return queryable(run, (script) => client.query(script));
}

/**
 * A PostgreSQL server through a `pg` connection pool.
 * @throws {InvalidOptionError} naming a pool option that is not a whole number in range.
 */
export function postgresSql(options: PostgresSqlOptions): Sql {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: integer('maxConnections', options.maxConnections ?? 4, { min: 1 }),
    connectionTimeoutMillis: integer('connectTimeoutMs', options.connectTimeoutMs ?? 5000, { min: 1 }),
    statement_timeout: integer('statementTimeoutMs', options.statementTimeoutMs ?? 5000, { min: 0 }),
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
  });
  // An idle client losing its server (a restart, a failover) must not crash the process;
  // the next statement gets a fresh connection.
  pool.on('error', () => {});
  const close = async (): Promise<void> => {
    if (!pool.ended) await pool.end();
  };
  return {
    kind: 'postgres',
    ...pgQueryable(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(pgQueryable(client));
        await client.query('COMMIT');
        return result;
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
        await pipeline(client.query(copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, HEADER true)`)), createWriteStream(path));
      } finally {
        client.release();
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function pgliteQueryable(db: Pick<PGlite, 'query' | 'exec'>): SqlQueryable {
  const run: Run = async (text, params) => {
    const result = await db.query(text, params);
    return { rows: result.rows, count: result.affectedRows ?? 0 };
  };
  return queryable(run, (script) => db.exec(script));
}

/**
 * PGlite: PostgreSQL in this process. `dataDir` keeps the database in a directory across
 * restarts (one process at a time: a second one opening it would corrupt it); `undefined`
 * keeps it in memory. Starting takes a few seconds.
 */
export async function pgliteSql(dataDir?: string): Promise<Sql> {
  const db = dataDir === undefined ? await PGlite.create() : await PGlite.create({ dataDir });
  // PGlite runs one statement at a time; a transaction holds it, so plain statements wait their turn.
  const close = async (): Promise<void> => {
    if (!db.closed) await db.close();
  };
  return {
    kind: 'pglite',
    ...pgliteQueryable(db),
    transaction: (fn) => db.transaction((tx) => fn(pgliteQueryable(tx))),
    async copyToCsv(select, path) {
      const result = await db.query(`COPY (${select}) TO '/dev/blob' WITH (FORMAT csv, HEADER true)`);
      await writeFile(path, result.blob ? Buffer.from(await result.blob.arrayBuffer()) : '');
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** A SQL string literal, for statements that take no parameters (`COPY`, DuckDB's file functions). */
export function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}
