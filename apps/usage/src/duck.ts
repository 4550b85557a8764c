import { sqlString } from '@ballast/app-shared/sql';
import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';

/** A DuckDB connection in memory, with the two calls the billing job needs. */
export interface Duck {
  run(sql: string): Promise<void>;
  /** Rows as objects; DECIMAL and BIGINT values as strings (exact), other values as DuckDB gives them as JSON. */
  all(sql: string): Promise<Array<Record<string, string | number | boolean | null>>>;
  close(): void;
}

/** Opens an in-memory DuckDB. */
export async function openDuck(): Promise<Duck> {
  const instance = await DuckDBInstance.create(':memory:');
  const connection: DuckDBConnection = await instance.connect();
  return {
    async run(sql) {
      await connection.run(sql);
    },
    async all(sql) {
      const reader = await connection.runAndReadAll(sql);
      return reader.getRowObjectsJson() as Array<Record<string, string | number | boolean | null>>;
    },
    close() {
      connection.closeSync();
      instance.closeSync();
    },
  };
}

/** A DuckDB list of file paths, for `read_json([...])`. */
export function fileList(paths: readonly string[]): string {
  return `[${paths.map(sqlString).join(', ')}]`;
}

/**
 * `read_parquet` over these files. Hive partitioning is off: the archive's paths carry
 * `billing_period=…` for engines that want it, but its columns already hold the value, as
 * text (DuckDB would read `2026-10-03` from a path as a DATE).
 */
export function readParquet(paths: readonly string[]): string {
  return `read_parquet(${fileList(paths)}, hive_partitioning = false)`;
}
