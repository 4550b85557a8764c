/**
 * One small SQL interface over the two PostgreSQL engines the management plane runs on:
 * a real server through `pg` (distributed mode, tests) and PGlite, PostgreSQL compiled
 * to WebAssembly and run in-process (`npm start`'s embedded default). The schema, the
 * migrations and every query are the same on both.
 */
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';

/** Runs queries; rows come back as plain objects. */
export interface SqlQueryable {
  /** One statement, with `$1`… parameters. */
  query<R extends Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<R[]>;
  /** A script of several statements, without parameters (migrations). */
  exec(script: string): Promise<void>;
}

/** A database: queries, transactions, close. */
export interface Sql extends SqlQueryable, AsyncDisposable {
  /** Which engine. */
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>;
  /** Closes the connections (a PGlite database is flushed and closed). */
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
  /** Per-statement timeout, ms: a hung server fails a request instead of holding it. @default 5000 */
  statementTimeoutMs?: number;
}

/** A PostgreSQL server through a `pg` connection pool. */
export function postgresSql(options: PostgresSqlOptions): Sql {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.maxConnections ?? 4,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
    statement_timeout: options.statementTimeoutMs ?? 5000,
    idleTimeoutMillis: 10_000,
    allowExitOnIdle: true,
  });
  // An idle client losing its server (a restart) must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const close = async (): Promise<void> => {
    if (!pool.ended) await pool.end();
  };
  return {
    kind: 'postgres',
    async query(text, params = []) {
      return (await pool.query(text, params as unknown[])).rows;
    },
    async exec(script) {
      await pool.query(script);
    },
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const tx: SqlQueryable = {
          query: async (text, params = []) => (await client.query(text, params as unknown[])).rows,
          exec: async (script) => {
            await client.query(script);
          },
        };
        const result = await fn(tx);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      } finally {
        client.release();
      }
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * PGlite: PostgreSQL in this process. `dataDir` keeps the database in a directory
 * across restarts; `undefined` keeps it in memory. Starting takes a few seconds.
 */
export async function pgliteSql(dataDir?: string): Promise<Sql> {
  const db = dataDir === undefined ? await PGlite.create() : await PGlite.create({ dataDir });
  // PGlite runs one statement at a time; a transaction holds it, so plain queries wait their turn.
  const close = async (): Promise<void> => {
    if (!db.closed) await db.close();
  };
  return {
    kind: 'pglite',
    async query(text, params = []) {
      return (await db.query(text, params as unknown[])).rows as never;
    },
    async exec(script) {
      await db.exec(script);
    },
    transaction(fn) {
      return db.transaction((tx) =>
        fn({
          query: async (text, params = []) => (await tx.query(text, params as unknown[])).rows as never,
          exec: async (script) => {
            await tx.exec(script);
          },
        }),
      );
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
