import { type DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { sqlString } from './sql.ts';

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

/** A DuckDB list of file paths, for `read_parquet([...])`. */
export function fileList(paths: readonly string[]): string {
  return `[${paths.map(sqlString).join(', ')}]`;
}
